"""Consent per department and purpose, without I/O: what a consent grants, withdrawing one
department, and the receipt, which is the consent's history written out for the family."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from services.intake.domain import IntakeConflict
from shared.consent import PURPOSE_DEPARTMENTS, Purpose, purposes_for
from shared.departments import Department


class GrantProblem(ValueError):
    """A consent's departments and purposes do not fit together; ``fields`` name the culprits."""

    def __init__(self, message: str, fields: dict[str, str]) -> None:
        super().__init__(message)
        self.fields = fields


@dataclass(frozen=True)
class Grant:
    """One department named by a consent, the purposes it is given for, and whether the family
    has since withdrawn that department."""

    department: Department
    purposes: tuple[Purpose, ...]
    withdrawn: bool = False


def check_grants(departments: Sequence[Department], purposes: Sequence[Purpose]) -> None:
    """Every department needs a purpose it may be given, and every purpose a department it fits.

    A consent is per department and purpose; a purpose no named department can receive would
    be a promise nobody keeps, and a department without a purpose would get data for nothing.
    """
    fields: dict[str, str] = {}
    if len(set(departments)) != len(departments):
        fields["body.departments"] = "a department is named twice"
    for index, department in enumerate(departments):
        if not purposes_for(department, purposes):
            fields[f"body.departments.{index}"] = "no purpose given applies to this department"
    for index, purpose in enumerate(purposes):
        if not PURPOSE_DEPARTMENTS[purpose] & set(departments):
            fields[f"body.purposes.{index}"] = "this purpose applies to none of the departments"
    if fields:
        raise GrantProblem("The consent's departments and purposes do not fit together.", fields)


def grants(departments: Iterable[str], purposes: Iterable[str], withdrawn: Iterable[str]) -> list[Grant]:
    """The consent's grants, department by department, from what is stored."""
    gone, wanted = set(withdrawn), [Purpose(p) for p in purposes if p in Purpose._value2member_map_]
    return [Grant(Department(d), tuple(purposes_for(Department(d), wanted)), d in gone) for d in departments]


def live_departments(departments: Iterable[str], withdrawn: Iterable[str]) -> list[str]:
    gone = set(withdrawn)
    return [d for d in departments if d not in gone]


def withdraw(departments: Sequence[str], withdrawn: Sequence[str], asked: Sequence[Department]) -> list[str]:
    """The departments withdrawn once ``asked`` is withdrawn too (one department at a time is
    fine: the others keep their consent). Naming a department twice, or one already withdrawn,
    is a conflict; one the consent never named is the caller's mistake (``GrantProblem``)."""
    unknown = {f"body.departments.{i}": "not named by this consent"
               for i, d in enumerate(asked) if d.value not in departments}
    if unknown:
        raise GrantProblem("The consent does not name this department.", unknown)
    already = [d.value for d in asked if d.value in withdrawn]
    if already or len(set(asked)) != len(asked):
        raise IntakeConflict(f"Already withdrawn: {', '.join(already) or 'named twice'}.")
    return [*withdrawn, *(d.value for d in asked)]


@dataclass(frozen=True)
class Entry:
    """One line of a consent's history: what happened, when, for which departments."""

    state: str
    at: datetime
    departments: tuple[str, ...]
    expires_on: date | None = None


def receipt(*, role: str, birth_year: int, purposes: Iterable[str], history: Sequence[Entry]) -> str:
    """The text the family keeps: its consent's history, entry by entry, and what holds now.

    Written from the very history the team reads, so the receipt and the record cannot differ.
    No CPR number, no names, no staff.
    """
    wanted = [Purpose(p) for p in purposes if p in Purpose._value2member_map_]

    def named(departments: Iterable[str], with_purposes: bool = False) -> str:
        parts = []
        for slug in departments:
            department = Department(slug)
            given = ", ".join(p.value for p in purposes_for(department, wanted))
            parts.append(f"{department.danish_name} ({given})" if with_purposes else department.danish_name)
        return "; ".join(parts) or "no department"

    lines = ["Samtykke / consent — Opgang til Opgang", f"Consent of: {role} born {birth_year}."]
    for entry in history:
        day = entry.at.date().isoformat()
        if entry.state == "given":
            until = f"until {entry.expires_on}" if entry.expires_on else "until withdrawn"
            lines.append(f"{day}: given for {named(entry.departments, True)}; valid {until}.")
        elif entry.state == "renewed":
            until = f"until {entry.expires_on}" if entry.expires_on else "until withdrawn"
            lines.append(f"{day}: renewed for {named(entry.departments)}; valid {until}.")
        else:
            lines.append(f"{day}: {entry.state} for {named(entry.departments)}.")
    lines.append("You can withdraw it, or one department of it, at any time by telling your makkerpar.")
    return "\n".join(lines)
