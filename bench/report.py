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


def write_report(path: Path, sections: list[Section], *, preamble: str = "") -> None:
    """Write the whole report: heading, date, machine, then each section in order."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = ["# Performance", "", f"Measured {now} on {machine_description()}.", ""]
    if preamble:
        parts += [preamble, ""]
    parts += [section.markdown() for section in sections]
    path.write_text("\n".join(parts))
