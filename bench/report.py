"""One figure against its baseline, and the markdown report every benchmark writes into.

Every benchmark measures the system and a baseline in the same run on the same machine, so the
ratio, not the absolute number, is what a reader compares across machines.
"""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path


@dataclass(frozen=True)
class Figure:
    """One measured quantity for the system and for its baseline.

    ``higher_is_better`` says which way the ratio reads; ``goal`` is the ratio (system over
    baseline) or absolute value the issue asks for, written as text, e.g. ``">= 0.70 x baseline"``.
    """

    name: str
    unit: str
    system: float
    baseline: float | None
    goal: str = ""
    met: bool | None = None

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.system / self.baseline


@dataclass
class Section:
    """One benchmark's part of the report: what was run, its figures, and notes."""

    title: str
    setup: str
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: Markdown kept with the section across runs (e.g. the steps that led to its figures).
    history: str = ""

    def markdown(self) -> str:
        lines = [f"## {self.title}", "", self.setup, "",
                 "| figure | unit | system | baseline | ratio | goal | met |",
                 "| --- | --- | ---: | ---: | ---: | --- | --- |"]
        for f in self.figures:
            base = "—" if f.baseline is None else _fmt(f.baseline)
            ratio = "—" if f.ratio is None else f"{f.ratio:.2f}"
            met = {True: "yes", False: "**no**", None: ""}[f.met]
            lines.append(f"| {f.name} | {f.unit} | {_fmt(f.system)} | {base} | {ratio} | {f.goal} | {met} |")
        if self.notes:
            lines.append("")
            lines.extend(f"- {note}" for note in self.notes)
        if self.history:
            lines += ["", self.history.strip()]
        return "\n".join(lines) + "\n"


def _fmt(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}"


def machine_description() -> str:
    """CPU model, cores, memory, Python and PostgreSQL versions: what the figures ran on."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{kib / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        memory = "unknown memory"
    postgres = subprocess.run(["psql", "--version"], capture_output=True, text=True).stdout.strip()
    return (f"{cpu}, {os.cpu_count()} cores, {memory}; {platform.system()} {platform.release()}; "
            f"Python {platform.python_version()}; {postgres or 'psql not found'}")


#: The generated summary at the end of the report; rebuilt from every section's goal rows.
SUMMARY_TITLE = "Goals at a glance"
_HEADER = ("# Performance\n\nWritten by `bench/run.sh` (= `python -m bench`). Each section says "
           "when, on what machine and by which command it was measured; `--only NAME` measures "
           "again and replaces only that benchmark's sections, so every figure in a section comes "
           "from one run. "
           "Each figure is compared with a baseline measured in the same run on the same machine: "
           "the ratio, not the absolute number, is what carries across machines.\n")


def write_report(path: Path, sections: list[Section], *, preamble: str = "") -> None:
    """Replace these sections in the report (or add them), keep the others, and rebuild the
    summary of every goal from all sections' tables.

    A benchmark run with ``--only`` thus updates its own part without erasing what the other
    benchmarks measured earlier; each section carries its own date, machine and command."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    stamp = f"_Measured {now} on {machine_description()}. {preamble}_".replace(" _", "_")
    blocks = _read_sections(path)
    for section in sections:
        text = section.markdown()
        heading, _, body = text.partition("\n")
        blocks[section.title] = f"{heading}\n\n{stamp}\n{body}"
    blocks.pop(SUMMARY_TITLE, None)
    parts = [_HEADER, *blocks.values(), _summary(blocks)]
    path.write_text("\n".join(part.rstrip("\n") + "\n" for part in parts))


def _read_sections(path: Path) -> dict[str, str]:
    """The report's sections by title, in order (the text before the first one is dropped)."""
    if not path.exists():
        return {}
    blocks: dict[str, str] = {}
    title: str | None = None
    for line in path.read_text().splitlines(keepends=True):
        if line.startswith("## "):
            title = line[3:].strip()
            blocks[title] = ""
        if title is not None:
            blocks[title] += line
    return blocks


def _summary(blocks: dict[str, str]) -> str:
    """One row per figure that has a goal, read back from each section's table."""
    rows = ["| benchmark | figure | system | ratio | goal | met |", "| --- | --- | ---: | ---: | --- | --- |"]
    for title, block in blocks.items():
        for line in block.splitlines():
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if len(cells) == 7 and cells[5] and cells[5] != "goal" and not set(cells[5]) <= {"-", " "}:
                name, unit, system, _base, ratio, goal, met = cells
                rows.append(f"| {title} | {name} | {system} {unit} | {ratio} | {goal} | {met} |")
    return f"## {SUMMARY_TITLE}\n\n" + "\n".join(rows) + "\n"
