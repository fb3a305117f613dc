"""The steering report as CSV and as a printable HTML page with server-rendered SVG charts.

The page is one self-contained document: inline CSS and SVG, no script, no font, image or style
sheet from anywhere else (a browser opening it makes no request), so it prints and archives as it
is and a politician reads it without explanation. Both formats show exactly the JSON's cells,
"<5" included: they are views of :class:`~services.casework.steering.SteeringReportRead`.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from html import escape

from services.casework.steering import SectionRead, SteeringReportRead, Value

CSV_COLUMNS = ("section", "row", "column", "value", "unit", "section_title", "row_label", "column_label")
BAR_WIDTH = 300
#: The column each section's chart draws.
CHARTED = {"funnel": "families", "capacity": "enrolled", "outcomes": "value",
           "savings": "savings_per_year_ore", "cofinancing": "amount_ore", "funding": "amount_ore"}


def report_csv(report: SteeringReportRead) -> str:
    """One line per cell (RFC 4180, comma): section, row and column keys, the value ("<5" when
    withheld, empty when undefined), its unit and the labels."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for section in report.sections:
        for row in section.rows:
            for column in section.columns:
                writer.writerow([section.key, row.key, column.key, _text(row.values.get(column.key)),
                                 column.unit, section.title, row.label, column.label])
    return out.getvalue()


def _text(value: Value) -> str:
    return "" if value is None else str(value)


def _shown(value: Value, unit: str) -> str:
    """A cell as the page shows it: money in whole DKK with thousands separators (the JSON and
    CSV keep øre for other systems), "–" for a figure that is not defined."""
    if unit == "øre" and isinstance(value, int):
        return f"{Decimal(value) / 100:,.0f} DKK"
    if unit == "per cent" and isinstance(value, Decimal):
        return f"{value} %"
    return _text(value) or "–"


def _number(value: Value) -> float | None:
    return float(value) if isinstance(value, int | Decimal) and not isinstance(value, bool) else None


def bar_chart(title: str, bars: list[tuple[str, Value]], *, unit: str = "") -> str:
    """Horizontal bars, one per (label, value); a withheld or undefined value gets no bar, only
    its "<5" or "–" written out, so a chart never shows what the table withholds."""
    numbers = [n for _label, v in bars if (n := _number(v)) is not None]
    top = max([abs(n) for n in numbers] + [1.0])
    height = 24 * len(bars) + 30
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="640" height="{height}" '
             f'viewBox="0 0 640 {height}"><title>{escape(title)}</title>']
    for i, (label, value) in enumerate(bars):
        y = 20 + 24 * i
        parts.append(f'<text x="0" y="{y + 14}" font-size="12">{escape(label)}</text>')
        number = _number(value)
        if number is None:
            parts.append(f'<text x="210" y="{y + 14}" font-size="12" font-style="italic">'
                         f'{escape(_text(value) or "–")}</text>')
            continue
        width = max(1.0, BAR_WIDTH * abs(number) / top)
        parts.append(f'<rect x="210" y="{y + 2}" width="{width:.1f}" height="16" fill="#2b6cb0"/>'
                     f'<text x="{214 + width:.1f}" y="{y + 14}" font-size="12">'
                     f'{escape(_shown(value, unit))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _table(section: SectionRead) -> str:
    rows = "".join("<tr><th scope=\"row\">" + escape(r.label) + "</th>"
                   + "".join(f"<td>{escape(_shown(r.values.get(c.key), c.unit))}</td>"
                             for c in section.columns)
                   + "</tr>" for r in section.rows)
    if not section.rows:
        rows = f'<tr><td colspan="{len(section.columns) + 1}">None recorded</td></tr>'
    head = "".join(f"<th>{escape(c.label.replace('(øre', '(DKK'))}</th>" for c in section.columns)
    return f"<table><thead><tr><th></th>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _chart(section: SectionRead) -> str:
    column = CHARTED.get(section.key)
    if column is None or not section.rows:
        return ""
    unit = next(c.unit for c in section.columns if c.key == column)
    return bar_chart(section.title, [(r.label, r.values.get(column)) for r in section.rows], unit=unit)


STYLE = """
body { font-family: sans-serif; margin: 2em; color: #1a202c; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 1.5em; page-break-after: avoid; }
section { page-break-inside: avoid; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #cbd5e0; padding: 0.2em 0.6em; text-align: right; }
th[scope=row] { text-align: left; font-weight: normal; }
.definition, .rule { color: #4a5568; max-width: 50em; }
@media print { body { margin: 0; } }
"""


def report_html(report: SteeringReportRead) -> str:
    """The report as one printable page: per section its definition, a chart and the table."""
    scope = report.site_id or "all sites"
    sections = "".join(
        f'<section id="{escape(s.key)}"><h2>{escape(s.title)}</h2>'
        f'<p class="definition">{escape(s.definition)}</p>{_chart(s)}{_table(s)}</section>'
        for s in report.sections)
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>Steering report: {escape(scope)}, {report.period_start} to {report.period_end}</title>"
            f"<style>{STYLE}</style></head><body>"
            f"<h1>Opgang til Opgang — steering report</h1>"
            f"<p>{escape(scope.capitalize() if scope == 'all sites' else 'Site ' + scope)}; period "
            f"{report.period_start} to {report.period_end}; money for {report.finance_year}; made "
            f"{report.generated_at:%Y-%m-%d %H:%M} UTC.</p>"
            f'<p class="rule">No figure here names a person or a family. A count of fewer than '
            f'{report.small_number_limit} persons or families is shown as "{escape(report.suppressed_as)}", '
            "and so is any figure that would let it be worked out (a share, an average, or another "
            "cell of the same total).</p>"
            f"{sections}</body></html>")
