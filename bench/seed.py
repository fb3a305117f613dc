"""Bulk seed of the intake database: households with their whole history, written with COPY.

Going through the API would take hours for 100,000 families, so the rows are made here in the
shapes the service itself writes (``services/intake/service/``), into a database migrated by
the service's own migrations:

- households screened by the real ``domain.screen`` (criteria and explanations as stored);
- persons with CPR numbers that pass ``parse_cpr``, encrypted and hashed by the project's own
  ``CprVault`` with the configured keys (so the service decrypts them on read, as in production);
- outreach attempts, consents (+ history) and the status each history leads to; enrolment is
  capped by each site's capacity, the rest wait on the waitlist;
- the outbox: one row per event the service would have recorded, built from the real event
  contracts (``shared.events.intake``) and marked published, in per-family order.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg

from services.intake import domain as d
from services.intake.areas import Area, StreetRange
from services.intake.cpr import CprVault, parse_cpr
from shared.departments import Department
from shared.events import intake as ev
from shared.events.registry import REGISTRY, DomainEvent
from shared.outbox import source_for
from shared.settings import Settings

#: The three pilot sites and, for the city-wide scale test, further housing areas in Aarhus.
CITY_SITES: tuple[d.SiteDefaults, ...] = d.DEFAULT_SITES + tuple(
    d.SiteDefaults(slug, name, 50) for slug, name in (
        ("bispehaven", "Bispehaven"), ("frydenlund", "Frydenlund"), ("herredsvang", "Herredsvang"),
        ("rosenhoej", "Rosenhøj"), ("skovgaardsparken", "Skovgaardsparken"), ("hasle", "Hasle"),
        ("trigeparken", "Trigeparken"), ("aarhus-oe", "Aarhus Ø"), ("vejlby", "Vejlby")))

STREETS = ("Gudrunsvej", "Dortesvej", "Bentesvej", "Janesvej", "Edwin Rahrs Vej", "Toveshøjvej",
           "Hasle Ringvej", "Rosenhøj", "Herredsvej", "Frydenlunds Allé")
#: Eligible households' status, drawn with these weights (enrolment capped by capacity).
FUNNEL_WEIGHTS = {"identified": 25, "no_answer": 14, "contacted": 14, "invited": 8, "declined": 12,
                  "consented": 4, "enrolled": 6, "exited": 7}
COLUMNS = {
    "households": ("id", "site_id", "address", "register_ref", "status", "eligible", "screening",
                   "screened_at", "waitlisted_at", "enrolled_at", "exited_at", "exit_reason",
                   "created_at"),
    "persons": ("id", "household_id", "role", "birth_date", "cpr_ciphertext", "cpr_hash",
                "cpr_is_replacement", "unemployed_since", "lives_at_address", "active", "added_at"),
    "outreach_attempts": ("id", "household_id", "at", "staff_id", "channel", "outcome"),
    "consents": ("id", "household_id", "person_id", "given_by_person_id", "departments", "purposes",
                 "state", "given_at", "expires_on"),
    "consent_history": ("consent_id", "state", "at", "by"),
    "outbox": ("event_id", "event_type", "source", "partition_key", "subject", "occurred_at",
               "correlation_id", "payload", "published_at", "attempts"),
}


@dataclass(frozen=True)
class Family:
    """What a benchmark needs to know of a seeded household to address it."""

    id: uuid.UUID
    site_id: str
    status: str
    #: Departments with events about the family: their slice of it is not empty.
    seen_by: frozenset[str]


@dataclass
class SeedResult:
    families: list[Family]
    rows: Counter[str]
    seconds: float


@dataclass
class _Batch:
    rows: dict[str, list[tuple[Any, ...]]] = field(default_factory=lambda: {t: [] for t in COLUMNS})

    def add(self, table: str, row: tuple[Any, ...]) -> None:
        self.rows[table].append(row)


@dataclass
class _Member:
    id: uuid.UUID
    role: str
    birth_date: date
    unemployed_since: date | None


class _Generator:
    """Makes one household's rows at a time; deterministic for a given seed."""

    def __init__(self, sites: Sequence[d.SiteDefaults], weights: Sequence[float], seed: int,
                 furthest_stage: bool) -> None:
        settings = Settings()
        self.vault = CprVault.from_settings(settings.cpr_keys.get_secret_value(),
                                            settings.cpr_hash_key.get_secret_value())
        self.rng = random.Random(seed)
        self.sites, self.weights = list(sites), list(weights)
        #: Every seeded site's target area covers the seed's streets, so screening finds a
        #: household in its area (its other criteria decide), as the sites were before areas.
        self.area = Area("seeded", tuple(StreetRange(street) for street in STREETS))
        self.places = {s.id: s.capacity for s in sites}
        self.today = date.today()
        self.now = datetime.now(UTC)
        self.serial = 0
        self.furthest_stage = furthest_stage

    # -- one household -------------------------------------------------------------------

    def household(self, batch: _Batch) -> Family:
        rng = self.rng
        site = rng.choices(self.sites, self.weights)[0].id
        household_id = uuid.uuid4()
        created = self.now - timedelta(days=rng.uniform(30, 1100))
        members = self._members(batch, household_id, created)
        address = f"{rng.choice(STREETS)} {rng.randint(1, 120)}, {rng.randint(0, 7)}. th"
        screening = d.screen(d.HouseholdFacts(site, tuple(
            d.MemberFacts(m.id, d.MemberRole(m.role), m.birth_date, m.unemployed_since)
            for m in members), address), today=self.today, area=self.area)
        status = self._status(site, screening.eligible)
        clock = created + timedelta(minutes=5)
        self._event(batch, clock, ev.HouseholdScreened(
            family_id=household_id, site_id=site, eligible=screening.eligible,
            criteria=[ev.CriterionOutcome(code=c.code, met=c.met) for c in screening.criteria]))
        path = ["identified" if screening.eligible else "not_eligible"]
        clock = self._outreach(batch, household_id, site, status, clock, path)
        times, seen_by = self._consents_and_enrolment(batch, household_id, site, status, members, clock)
        path += [stage for stage in ("consented", "waitlisted", "enrolled", "exited") if stage in times]
        self.serial += 1
        row = (
            household_id, site, address,
            f"REG-{self.serial:07d}" if rng.random() < 0.7 else None, status, screening.eligible,
            json.dumps([{"code": c.code, "met": c.met, "explanation": c.explanation}
                        for c in screening.criteria]),
            created + timedelta(minutes=5), times.get("waitlisted"), times.get("enrolled"),
            times.get("exited"), "goals_reached" if status == "exited" else None, created)
        batch.add("households", row + ((_furthest(path),) if self.furthest_stage else ()))
        return Family(household_id, site, status, seen_by)

    def _members(self, batch: _Batch, household_id: uuid.UUID, created: datetime) -> list[_Member]:
        rng = self.rng
        roles = (["mother"] if rng.random() < 0.9 else []) + (["father"] if rng.random() < 0.5 else [])
        roles = roles or ["other_adult"]
        roles += ["child"] * (rng.choice((0, 1, 1, 2, 2, 2, 3, 3, 4)) if rng.random() < 0.85 else 0)
        members = []
        for role in roles:
            born = self._birth_date(adult=role != "child")
            unemployed = (self.today - timedelta(days=rng.randint(100, 3000))
                          if role != "child" and rng.random() < 0.7 else None)
            cpr = parse_cpr(self._cpr_digits(born))
            member = _Member(uuid.uuid4(), role, cpr.birth_date, unemployed)
            batch.add("persons", (member.id, household_id, role, cpr.birth_date, self.vault.encrypt(cpr),
                                  self.vault.lookup_hash(cpr), cpr.is_replacement, unemployed, True,
                                  True, created))
            members.append(member)
        return members

    def _birth_date(self, *, adult: bool) -> date:
        first, last = (date(1965, 1, 1), date(2002, 12, 31)) if adult else (date(2006, 1, 1),
                                                                             date(2024, 12, 31))
        return first + timedelta(days=self.rng.randint(0, (last - first).days))

    def _cpr_digits(self, born: date) -> str:
        """DDMMYY-SSSS whose 7th digit gives the right century; 1 in 100 a replacement number."""
        day = born.day + (60 if self.rng.random() < 0.01 else 0)
        seventh = self.rng.randint(0, 3) if born.year < 2000 else 4
        return f"{day:02d}{born.month:02d}{born.year % 100:02d}{seventh}{self.rng.randint(0, 999):03d}"

    def _status(self, site: str, eligible: bool) -> str:
        if not eligible:
            return "not_eligible"
        status = self.rng.choices(list(FUNNEL_WEIGHTS), list(FUNNEL_WEIGHTS.values()))[0]
        if status == "enrolled":
            if self.places[site] <= 0:
                return "waitlisted"
            self.places[site] -= 1
        return status

    # -- history -------------------------------------------------------------------------

    def _outreach(self, batch: _Batch, household_id: uuid.UUID, site: str, status: str,
                  clock: datetime, path: list[str]) -> datetime:
        """Door-knocks whose outcomes lead to the household's status, as the funnel allows."""
        rng = self.rng
        outcomes = ["not_home"] * rng.randint(0, 2)
        finals = {"identified": [], "no_answer": ["not_home"], "contacted": ["wants_to_hear_more"],
                  "declined": ["declined"], "not_eligible": []}
        outcomes += finals.get(status, ["wants_to_hear_more", "agreed"])
        if status in ("identified", "not_eligible"):
            outcomes = []
        current = d.HouseholdStatus.IDENTIFIED
        for outcome in outcomes:
            clock += timedelta(days=rng.uniform(1, 20))
            current = d.status_after_attempt(current, d.ContactOutcome(outcome))
            path.append(current.value)
            attempt_id = uuid.uuid4()
            staff = f"staff-{rng.randint(1, 40)}"
            batch.add("outreach_attempts", (attempt_id, household_id, clock, staff, "door_knock", outcome))
            self._event(batch, clock, ev.OutreachAttemptRecorded(
                family_id=household_id, site_id=site, attempt_id=attempt_id, at=clock, staff_id=staff,
                outcome=outcome, status=current.value))
        return clock

    def _consents_and_enrolment(self, batch: _Batch, household_id: uuid.UUID, site: str, status: str,
                                members: list[_Member], clock: datetime,
                                ) -> tuple[dict[str, datetime], frozenset[str]]:
        """Consents, then the waitlist or enrolment and exit; returns their times and the
        departments with events about the family: those a consent names (enrolment and exit go
        to the covered ones, a subset)."""
        if status not in ("consented", "waitlisted", "enrolled", "exited"):
            return {}, frozenset()
        rng = self.rng
        clock += timedelta(days=rng.uniform(1, 14))
        named, covered = self._consents(batch, household_id, site, members, clock)
        shared_with = [dep.value for dep in Department if dep.value in covered]
        times: dict[str, datetime] = {"consented": clock}
        if status == "waitlisted":
            times["waitlisted"] = clock + timedelta(hours=1)
            self._event(batch, times["waitlisted"], ev.FamilyWaitlisted(
                family_id=household_id, site_id=site, position=rng.randint(1, 60)))
        if status in ("enrolled", "exited"):
            times["enrolled"] = clock + timedelta(hours=1)
            self._event(batch, times["enrolled"], ev.FamilyEnrolled(
                family_id=household_id, site_id=site, shared_with=shared_with, members=[
                    ev.Member(person_id=m.id, role=m.role, birth_year=m.birth_date.year)
                    for m in members]))
        if status == "exited":
            times["exited"] = min(self.now, times["enrolled"] + timedelta(days=rng.uniform(60, 500)))
            self._event(batch, times["exited"], ev.FamilyExited(
                family_id=household_id, site_id=site, reason="goals_reached",
                shared_with=shared_with))
        return times, frozenset(named)

    def _consents(self, batch: _Batch, household_id: uuid.UUID, site: str, members: list[_Member],
                  clock: datetime) -> tuple[set[str], set[str]]:
        """One consent per member (an adult gives a child's); returns the departments named by
        any consent and those covered (named by an adult's own, all valid here)."""
        rng = self.rng
        giver = next(m for m in members if m.role != "child")
        named: set[str] = set()
        covered: set[str] = set()
        for member in members:
            by = member if member.role != "child" else giver
            departments = sorted(rng.sample([dep.value for dep in Department], rng.randint(2, 4)))
            named.update(departments)
            if member.role != "child":
                covered.update(departments)
            expires = self.today + timedelta(days=rng.randint(60, 700))
            consent_id = uuid.uuid4()
            batch.add("consents", (consent_id, household_id, member.id, by.id, json.dumps(departments),
                                   json.dumps(["coordinated_help"]), "given", clock, expires))
            batch.add("consent_history", (consent_id, "given", clock, "bench-team_staff"))
            self._event(batch, clock, ev.ConsentGiven(
                family_id=household_id, site_id=site, consent_id=consent_id, person_id=member.id,
                person_role=member.role, departments=departments, purposes=["coordinated_help"],
                expires_on=expires, covered_after=[dep.value for dep in Department if dep.value in covered]))
        return named, covered

    def _event(self, batch: _Batch, at: datetime, payload: DomainEvent) -> None:
        """One outbox row, as ``record_event`` writes it and the relay marks it published."""
        spec = REGISTRY.spec(payload.event_type)
        batch.add("outbox", (str(uuid.uuid4()), spec.type, source_for(spec.service),
                             payload.partition_key(), None, at, str(uuid.uuid4()),
                             json.dumps(payload.model_dump(mode="json")),
                             at + timedelta(milliseconds=40), 1))


def _furthest(path: Sequence[str]) -> str | None:
    """The furthest funnel stage the status path proves, folded as the service keeps it."""
    reached: d.HouseholdStatus | None = None
    for status in path:
        reached = d.furthest_stage(reached, d.HouseholdStatus(status))
    return reached.value if reached else None


async def _columns(conn: asyncpg.Connection) -> dict[str, tuple[str, ...]]:
    """The columns to fill; the households' ``furthest_stage`` only where the migrations have it.
    A required column the seeder does not know would make a wrong database: refuse it."""
    columns = dict(COLUMNS)
    rows = await conn.fetch("SELECT table_name, column_name, is_nullable, column_default "
                            "FROM information_schema.columns WHERE table_schema = 'public'")
    present = {(r["table_name"], r["column_name"]) for r in rows}
    if ("households", "furthest_stage") in present:
        columns["households"] += ("furthest_stage",)
    unknown = [f"{r['table_name']}.{r['column_name']}" for r in rows
               if r["table_name"] in columns and r["column_name"] not in columns[r["table_name"]]
               and r["is_nullable"] == "NO" and r["column_default"] is None]
    if unknown:
        raise RuntimeError(f"bench/seed.py does not fill the required columns {unknown}; update it")
    return columns


async def _copy(conn: asyncpg.Connection, batch: _Batch, columns: dict[str, tuple[str, ...]]) -> None:
    """Tables in foreign-key order, one transaction per batch."""
    async with conn.transaction():
        for table, rows in batch.rows.items():
            if rows:
                await conn.copy_records_to_table(table, records=rows, columns=list(columns[table]))


async def _insert_sites(conn: asyncpg.Connection, sites: Sequence[d.SiteDefaults]) -> None:
    await conn.executemany(
        "INSERT INTO sites (id, name, capacity) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
        [(s.id, s.name, s.capacity) for s in sites])


async def seed_intake(dsn: str, *, households: int, sites: Sequence[d.SiteDefaults] = d.DEFAULT_SITES,
                      weights: Sequence[float] | None = None, seed: int = 7,
                      batch_size: int = 5000) -> SeedResult:
    """Seed ``households`` families with their history; ANALYZE afterwards so plans are real."""
    started = time.perf_counter()
    families: list[Family] = []
    rows: Counter[str] = Counter()
    conn = await asyncpg.connect(dsn)
    try:
        columns = await _columns(conn)
        generator = _Generator(sites, weights or [1.0] * len(sites), seed,
                               furthest_stage="furthest_stage" in columns["households"])
        await _insert_sites(conn, sites)
        for start in range(0, households, batch_size):
            batch = _Batch()
            families += [generator.household(batch) for _ in range(min(batch_size, households - start))]
            rows.update({table: len(r) for table, r in batch.rows.items()})
            await _copy(conn, batch, columns)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return SeedResult(families, rows, time.perf_counter() - started)


def seed_intake_sync(dsn: str, **kwargs: Any) -> SeedResult:
    return asyncio.run(seed_intake(dsn, **kwargs))
