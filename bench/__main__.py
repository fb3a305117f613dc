"""Run every benchmark and write the markdown report: ``python -m bench [--quick] [--only NAME]``.

Not part of the test run. Each benchmark starts what it needs (PostgreSQL databases on the local
server, a tansu broker, the services and load generators as processes of their own), measures
the system and its baseline in the same run, and stops everything again.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from bench.report import Section, write_report

#: Module names under ``bench/``; each has ``run(*, quick: bool) -> list[Section]``.
BENCHMARKS = ("rest_read", "audit_entry", "rest_write", "event_latency", "hops", "projection", "scale",
              "dashboard", "startup", "scale_out")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs, to check the benchmarks work")
    parser.add_argument("--only", action="append", choices=BENCHMARKS, help="run only these")
    parser.add_argument("--output", type=Path, default=Path("docs/performance.md"))
    args = parser.parse_args(argv)
    for name in args.only or BENCHMARKS:
        print(f"== {name}", flush=True)
        module = importlib.import_module(f"bench.{name}")
        sections: list[Section] = module.run(quick=args.quick)
        for section in sections:
            print(section.markdown(), flush=True)
        # Written after each benchmark, so one that fails later loses nothing measured before it.
        command = f"`python -m bench{' --quick' if args.quick else ''} --only {name}`"
        note = ("quick run: short durations, figures indicative only" if args.quick else "full run")
        write_report(args.output, sections, preamble=f"Command: {command} ({note}).")
        print(f"report updated: {args.output}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
