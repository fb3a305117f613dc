"""Target areas as data, without I/O: which addresses belong to a site's area, and why.

An area is a list of streets, each whole or a range of house numbers (optionally one side of
the street only). Addresses are compared normalised — case, spacing and full stops do not
matter, and a letter after the number (12B) belongs to the number (12) — because the register,
the door plate and the person typing write the same address differently.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from enum import StrEnum

AREA_COLUMNS = ("street", "from_number", "to_number", "side")
#: What a street row may hold (the columns' sizes; the JSON schema says the same).
MAX_STREET, MAX_NUMBER = 200, 99_999
_SPACES = re.compile(r"\s+")
#: A house number and the one letter that may follow it ("12B", "12 b"), not a word ("12 Bygning").
_NUMBER = re.compile(r"(\d+)(?:\s*([^\W\d_])(?![^\W\d_]))?")


class Side(StrEnum):
    ALL = "all"
    ODD = "odd"
    EVEN = "even"


def street_key(street: str) -> str:
    """The form two spellings of one street share: case-folded, single-spaced, no full stops."""
    return _SPACES.sub(" ", street.replace(".", " ")).strip().casefold()


@dataclass(frozen=True)
class Address:
    """The part of an address an area is about: street and house number (letter apart)."""

    street: str
    number: int | None
    letter: str = ""

    @property
    def key(self) -> str:
        return street_key(self.street)

    def __str__(self) -> str:
        if self.number is None:
            return self.street
        return f"{self.street} {self.number}{self.letter.upper()}"


def parse_address(text: str) -> Address:
    """Street and house number from the first part of a Danish address ("Gudrunsvej 12B, 1. th,
    8220 Brabrand" → Gudrunsvej, 12, B). Without a number the whole part is the street."""
    first = _SPACES.sub(" ", text.split(",", 1)[0]).strip()
    words = first.split(" ")
    for index, word in enumerate(words[1:], start=1):
        if word[:1].isdigit():
            match = _NUMBER.match(" ".join(words[index:]))
            assert match is not None  # the word starts with a digit
            return Address(" ".join(words[:index]), int(match.group(1)), (match.group(2) or "").casefold())
    return Address(first, None)


@dataclass(frozen=True)
class StreetRange:
    """A street of the area: all of it, or house numbers ``from_number``–``to_number`` (both
    included), on both sides or only the odd or even one."""

    street: str
    from_number: int | None = None
    to_number: int | None = None
    side: Side = Side.ALL

    def covers(self, address: Address) -> bool:
        if street_key(self.street) != address.key:
            return False
        whole = self.from_number is None and self.side is Side.ALL
        if address.number is None:
            return whole
        if self.from_number is not None and self.to_number is not None and not (
                self.from_number <= address.number <= self.to_number):
            return False
        return self.side is Side.ALL or (address.number % 2 == 1) == (self.side is Side.ODD)


@dataclass(frozen=True)
class Area:
    name: str
    streets: tuple[StreetRange, ...]

    def contains(self, address: Address) -> bool:
        return any(street.covers(address) for street in self.streets)


@dataclass(frozen=True)
class AreaCheck:
    """The target-area criterion: ``met`` is None when the site has no area yet (unknown)."""

    met: bool | None
    explanation: str


def check_address(address_text: str, area: Area | None, *, site_id: str) -> AreaCheck:
    """Is the household's address in its site's area? Without an area it cannot be known, and
    the household cannot be found eligible until an admin defines one (and it is screened again)."""
    address = parse_address(address_text)
    if area is None:
        return AreaCheck(None, f"no target area is defined for site {site_id} yet, so it is unknown "
                               f"whether {address} is in it")
    if area.contains(address):
        return AreaCheck(True, f"{address} is in the {area.name} area")
    return AreaCheck(False, f"{address} is not in the {area.name} area")


class AreaRowError(ValueError):
    """A bad street: the row's line (CSV) or index (JSON) and the reason."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line, self.reason = line, reason


def street_range(street: str, from_number: int | None, to_number: int | None, side: str,
                 *, line: int) -> StreetRange:
    """A checked street range: a name, both ends or neither, ends ≥ 1 in order, a known side."""
    if not street.strip():
        raise AreaRowError(line, "street is empty")
    if len(street) > MAX_STREET:
        raise AreaRowError(line, f"street is longer than {MAX_STREET} characters")
    if (from_number is None) != (to_number is None):
        raise AreaRowError(line, "give both from_number and to_number, or neither for the whole street")
    if from_number is not None and to_number is not None and not 1 <= from_number <= to_number:
        raise AreaRowError(line, "from_number must be at least 1 and not above to_number")
    try:
        chosen = Side((side or "all").strip().lower())
    except ValueError:
        raise AreaRowError(line, f"side must be one of {', '.join(Side)}") from None
    return StreetRange(_SPACES.sub(" ", street).strip(), from_number, to_number, chosen)


def read_area_csv(text: str) -> tuple[list[StreetRange], list[AreaRowError]]:
    """Parse an area file (columns ``street, from_number, to_number, side``); every bad row is
    reported by line, so the caller can refuse the file whole."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    streets: list[StreetRange] = []
    errors: list[AreaRowError] = []
    try:
        missing = [c for c in AREA_COLUMNS[:1] if c not in (reader.fieldnames or [])]
        if missing:
            return [], [AreaRowError(1, f"missing columns: {', '.join(missing)}")]
        for line, row in enumerate(reader, start=2):
            try:
                streets.append(street_range((row.get("street") or ""), _number(row, "from_number", line),
                                            _number(row, "to_number", line), row.get("side") or "all",
                                            line=line))
            except AreaRowError as exc:
                errors.append(exc)
    except csv.Error as exc:
        errors.append(AreaRowError(reader.line_num + 1, f"not valid CSV: {exc}"))
    if not streets and not errors:
        errors.append(AreaRowError(1, "the file names no street"))
    return streets, errors


def _number(row: dict[str, str], name: str, line: int) -> int | None:
    raw = (row.get(name) or "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not raw.isascii():
        raise AreaRowError(line, f"{name} must be a whole number")
    if int(raw) > MAX_NUMBER:
        raise AreaRowError(line, f"{name} must be at most {MAX_NUMBER}")
    return int(raw)
