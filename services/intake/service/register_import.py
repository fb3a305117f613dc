"""Intake use case for importing a register extract (CSV) of candidate households."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.intake import domain as d
from services.intake.cpr import CprVault
from services.intake.models import Household, ImportRun
from services.intake.schemas import HouseholdIn, ImportRejectedRow, ImportReport, MemberIn
from services.intake.service.households import create_household
from shared.auth import Principal
from shared.errors import Conflict, Unprocessable


def import_scope(principal: Principal) -> str | None:
    """The one site a caller may import for: a team leader its own; municipal systems any (None)."""
    return principal.site if principal.is_team else None


async def import_register(session: AsyncSession, *, vault: CprVault, content: bytes, site: str | None = None,
                          progress: Callable[[int], None] | None = None) -> ImportReport:
    """Import a register extract; whole good households are created, bad rows reported; idempotent.

    ``site`` restricts the rows to one site (see ``import_scope``); ``None`` takes every site.
    """
    # Hashing and parsing a file of megabytes take CPU time: in a thread, so the service keeps
    # answering (/healthz included) while an import runs.
    digest, text = await asyncio.to_thread(_decode_import, content)
    previous = (await session.execute(select(ImportRun).where(ImportRun.file_sha256 == digest))).scalar()
    if previous is not None:
        return ImportReport(already_imported=True, households=0, persons=0,
                            rejected=[ImportRejectedRow(**r) for r in previous.rejected])  # type: ignore[arg-type]
    groups, errors = await asyncio.to_thread(lambda: d.group_households(d.read_import(text, site=site)))
    rejected = [ImportRejectedRow(line=e.line, reason=e.reason) for e in errors]
    households = persons = 0
    for done, (ref, rows) in enumerate(groups.items(), start=1):
        outcome = await _import_household(session, vault, ref, rows)
        if isinstance(outcome, str):
            rejected.extend(ImportRejectedRow(line=r.line, reason=outcome) for r in rows)
        else:
            households, persons = households + outcome, persons + outcome * len(rows)
        if progress:
            progress(done)
    rejected.sort(key=lambda r: r.line)
    session.add(ImportRun(file_sha256=digest, imported_rows=persons,
                          rejected=[r.model_dump() for r in rejected]))
    await session.flush()
    return ImportReport(already_imported=False, households=households, persons=persons, rejected=rejected)


def _decode_import(content: bytes) -> tuple[str, str]:
    """The file's digest and text; an empty, non-UTF-8 or header-less file is refused before
    anything is recorded (it is not a register extract, so it is no import run either)."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Unprocessable("The file is not UTF-8 text.", fields={"body": "not UTF-8"}) from None
    if not text.strip():
        raise Unprocessable("The file is empty.", fields={"body": "empty"})
    missing = d.missing_import_columns(text)
    if missing:
        raise Unprocessable("The file is not a register extract in CSV.",
                            fields={"body": f"missing columns: {', '.join(missing)}"})
    return hashlib.sha256(content).hexdigest(), text


async def _import_household(session: AsyncSession, vault: CprVault, ref: str,
                            rows: list[d.ImportRow]) -> int | str:
    """1 if created, 0 if already there (same register reference), else the reason it failed."""
    if (await session.execute(select(Household.id).where(Household.register_ref == ref))).first():
        return 0
    first = rows[0]
    if any((r.site_id, r.address) != (first.site_id, first.address) for r in rows):
        return f"household {ref}: its rows disagree on site or address"
    data = HouseholdIn(site_id=first.site_id, address=first.address, members=[
        MemberIn(cpr=r.cpr.digits, role=r.role.value, unemployed_since=r.unemployed_since,  # type: ignore[arg-type]
                 lives_at_address=r.lives_at_address) for r in rows])
    try:
        async with session.begin_nested():
            await create_household(session, vault=vault, data=data, register_ref=ref)
    except (Unprocessable, Conflict) as exc:
        return f"household {ref}: {exc.detail}"
    return 1
