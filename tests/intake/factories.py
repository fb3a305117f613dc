"""Small factories for intake tests: unique valid CPR numbers and household bodies."""

from __future__ import annotations

import itertools
from typing import Any

_serial = itertools.count(1)


def cpr(born_yy: int = 85, century_digit: int = 1, day: int = 1, month: int = 1) -> str:
    """A valid, unique CPR number (the serial varies; modulus 11 is not required)."""
    serial = next(_serial) % 1000
    return f"{day:02d}{month:02d}{born_yy:02d}-{century_digit}{serial:03d}"


def household_body(site_id: str = "gellerup", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "site_id": site_id, "address": "Gudrunsvej 10, 8220 Brabrand",
        "members": [
            {"cpr": cpr(85), "role": "mother", "unemployed_since": "2016-03-01"},
            {"cpr": cpr(15, century_digit=4), "role": "child"},
        ],
    }
    body.update(overrides)
    return body


#: A Gellerup target area holding the addresses the factories and fixtures use (Gudrunsvej, whole).
GELLERUP_AREA: dict[str, Any] = {"name": "Gellerup/Toveshøj", "streets": [{"street": "Gudrunsvej"}]}


async def define_area(http: Any, headers: dict[str, str], site_id: str = "gellerup",
                      area: dict[str, Any] | None = None) -> None:
    """Give a site its target area through the API (``headers``: an admin's), so households at
    the factories' addresses can be found eligible; a site without an area finds nobody eligible."""
    response = await http.put(f"/v1/sites/{site_id}/area", json=area or GELLERUP_AREA, headers=headers)
    assert response.status_code == 200, response.text
