"""The benchmark report: a run of one benchmark replaces its sections and keeps the others."""

from __future__ import annotations

from pathlib import Path

from bench.report import SUMMARY_TITLE, Figure, Section, write_report


def _section(title: str, system: float, met: bool) -> Section:
    rate = Figure("rate", "req/s", system, 100.0, ">= 0.50 x baseline", met)
    return Section(title, f"setup of {title}", [rate, Figure("p50", "ms", 3.0, 1.0)])


def test_a_later_run_replaces_its_own_section_only(tmp_path: Path) -> None:
    report = tmp_path / "performance.md"
    write_report(report, [_section("Reads", 20.0, False), _section("Writes", 60.0, True)],
                 preamble="first run")
    write_report(report, [_section("Reads", 70.0, True)], preamble="second run")
    text = report.read_text()
    assert text.count("## Reads") == 1 and text.count("## Writes") == 1
    reads, writes = text.split("## Writes")[0].split("## Reads")[1], text.split("## Writes")[1]
    assert "| rate | req/s | 70.00 |" in reads and "second run" in reads and "20.00" not in reads
    assert "| rate | req/s | 60.00 |" in writes and "first run" in writes


def test_the_summary_lists_every_goal_once_from_the_current_sections(tmp_path: Path) -> None:
    report = tmp_path / "performance.md"
    write_report(report, [_section("Reads", 20.0, False)])
    write_report(report, [_section("Reads", 70.0, True), _section("Writes", 60.0, True)])
    summary = report.read_text().split(f"## {SUMMARY_TITLE}")[1]
    rows = [line for line in summary.splitlines() if line.startswith(("| Reads", "| Writes"))]
    assert rows == ["| Reads | rate | 70.00 req/s | 0.70 | >= 0.50 x baseline | yes |",
                    "| Writes | rate | 60.00 req/s | 0.60 | >= 0.50 x baseline | yes |"]
    assert report.read_text().count(f"## {SUMMARY_TITLE}") == 1
