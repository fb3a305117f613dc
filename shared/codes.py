"""Machine codes (site ids, offer, reason and outcome codes): one shape for APIs and events.

A code is lower-case words joined by ``-`` or ``_`` with at most four digits in a row, so it can
name a site or a reason but can never carry free text, a name or a CPR number into an event or
a department's slice.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints

CODE_PATTERN = r"^[a-z][a-z_-]*(?:[0-9]{1,4}[a-z_-]+)*[0-9]{0,4}$"
Code = Annotated[str, StringConstraints(pattern=CODE_PATTERN, min_length=2, max_length=80)]
#: A decimal number written as text (e.g. FTE-days ``"547.5"``), exact where floats are not.
DecimalText = Annotated[str, StringConstraints(pattern=r"^\d{1,6}(\.\d{1,6})?$")]
