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
BENCHMARKS = ("rest_read", "rest_write", "event_latency", "projection", "scale", "dashboard", "startup",
              "scale_out")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs, to check the benchmarks work")
    parser.add_argument("--only", action="append", choices=BENCHMARKS, help="run only these")
    parser.add_argument("--output", type=Path, default=Path("docs/performance.md"))
    args = parser.parse_args(argv)
    sections: list[Section] = []
    for name in args.only or BENCHMARKS:
        print(f"== {name}", flush=True)
        module = importlib.import_module(f"bench.{name}")
        for section in module.run(quick=args.quick):
            print(section.markdown(), flush=True)
            sections.append(section)
    preamble = ("Quick run (`--quick`): short durations, figures are indicative only."
                if args.quick else "Full run: `bench/run.sh` (= `python -m bench`).")
    write_report(args.output, sections, preamble=preamble)
    print(f"report written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
