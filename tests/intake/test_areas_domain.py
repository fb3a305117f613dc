"""Target areas without I/O: addresses matched normalised, ranges and sides, the CSV, the unknown."""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from services.intake import domain as d
from services.intake.areas import Area, Side, StreetRange, check_address, parse_address, read_area_csv

GELLERUP = Area("Gellerup/Toveshøj", (
    StreetRange("Gudrunsvej", 2, 40, Side.EVEN), StreetRange("Karen Blixens Boulevard"),
    StreetRange("Dortesvej", 1, 61)))


@pytest.mark.parametrize(("address", "inside"), [
    ("Gudrunsvej 12B, 1. th, 8220 Brabrand", True),   # a letter after the number belongs to it
    ("  GUDRUNSVEJ   12 b ,st.", True),               # case and spacing do not matter
    ("gudrunsvej 40", True), ("Gudrunsvej 2", True),   # both ends are in
    ("Gudrunsvej 42", False), ("Gudrunsvej 13", False),  # past the end; the odd side
    ("Karen Blixens Boulevard 7 st", True), ("Karen Blixens Blvd. 7", False),
    ("Dortesvej 61A", True), ("Dortesvej 62", False),
    ("Silkeborgvej 123", False), ("Gudrunsvej", False),  # no number: only a whole street holds it
])
def test_an_address_is_in_the_area_by_street_and_number_normalised(address: str, inside: bool) -> None:
    assert GELLERUP.contains(parse_address(address)) is inside


def test_a_whole_street_holds_an_address_without_a_number_and_full_stops_are_spacing() -> None:
    assert GELLERUP.contains(parse_address("karen  blixens boulevard"))
    assert parse_address("Gl. Byvej 3").key == parse_address("gl byvej 3").key


def test_the_result_is_explained_with_the_address_and_the_area() -> None:
    outside = check_address("Silkeborgvej 123, 8000 Aarhus C", GELLERUP, site_id="gellerup")
    assert (outside.met, outside.explanation) == (
        False, "Silkeborgvej 123 is not in the Gellerup/Toveshøj area")
    inside = check_address("gudrunsvej 12b", GELLERUP, site_id="gellerup")
    assert (inside.met, inside.explanation) == (True, "gudrunsvej 12B is in the Gellerup/Toveshøj area")


def test_a_site_without_an_area_leaves_the_criterion_unknown_and_the_household_not_eligible() -> None:
    facts = d.HouseholdFacts("tilst", (
        d.MemberFacts(uuid.uuid4(), d.MemberRole.MOTHER, date(1985, 1, 1), date(2015, 1, 1)),
        d.MemberFacts(uuid.uuid4(), d.MemberRole.CHILD, date(2015, 1, 1))), "Tilst Skolevej 4")
    result = d.screen(facts, today=date(2026, 11, 22), area=None)
    area = result.criteria[0]
    assert (area.code, area.met, area.state) == ("target_area", False, "unknown")
    assert "no target area is defined for site tilst" in area.explanation
    assert not result.eligible and [c.state for c in result.criteria[1:]] == ["met", "met"]


def test_an_area_file_is_read_and_every_bad_row_is_named_by_its_line() -> None:
    streets, errors = read_area_csv("street,from_number,to_number,side\nGudrunsvej,2,40,even\n"
                                    "Dortesvej,,,\n")
    assert (streets, errors) == ([StreetRange("Gudrunsvej", 2, 40, Side.EVEN), StreetRange("Dortesvej")], [])
    _, errors = read_area_csv("street,from_number,to_number,side\nGudrunsvej,40,2,\n,1,2,\n"
                              "Dortesvej,3,,\nBrendstrupvej,1,9,left\nAbc,x,9,\nAbc,1,100000,\n"
                              f"{'x' * 201},1,2,\n")
    assert [(e.line, e.reason) for e in errors] == [
        (2, "from_number must be at least 1 and not above to_number"), (3, "street is empty"),
        (4, "give both from_number and to_number, or neither for the whole street"),
        (5, "side must be one of all, odd, even"), (6, "from_number must be a whole number"),
        (7, "to_number must be at most 99999"), (8, "street is longer than 200 characters")]
    assert [(e.line, e.reason) for e in read_area_csv("road\nGudrunsvej\n")[1]] == [
        (1, "missing columns: street")]
    assert [(e.line, e.reason) for e in read_area_csv("street\n")[1]] == [(1, "the file names no street")]
