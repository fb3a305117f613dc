"""A CSV request body (a ``text/csv`` upload) read one way for every import, so an odd file is a
422 naming the body — never a server error — and no cell's value is ever echoed back."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from shared.errors import Unprocessable


def read_csv_body(content: bytes, *, headers: Sequence[Sequence[str]],
                  max_rows: int) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header (one of ``headers``) and the non-blank rows with their line numbers, cells
    stripped. An undecodable, malformed, oversized or unknown-header file is 422 on ``body``."""
    try:
        text = content.decode("utf-8-sig")
        # newline="": the csv module reads \r, \n and \r\n line ends itself (and inside quotes).
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except UnicodeDecodeError:
        raise Unprocessable("The file is not UTF-8 text.", fields={"body": "not UTF-8"}) from None
    except csv.Error:
        raise Unprocessable("The file is not valid CSV.", fields={"body": "not valid CSV"}) from None
    header = [c.strip() for c in rows[0]] if rows else []
    if header not in [list(h) for h in headers]:
        raise Unprocessable("Unknown columns.", fields={"body": "columns must be " + " or ".join(
            ",".join(h) for h in headers)})
    if len(rows) - 1 > max_rows:
        raise Unprocessable("Too many rows.", fields={"body": f"at most {max_rows} rows"})
    cells = [(line, [c.strip() for c in row]) for line, row in enumerate(rows[1:], start=2)]
    return header, [(line, row) for line, row in cells if any(row)]
