"""Events of the finance service. Charges are per department so each sees only its own."""

from __future__ import annotations

from datetime import date
from typing import Literal
from uuid import UUID

from pydantic import BaseModel

from shared.codes import Code, DecimalText
from shared.departments import DepartmentSlug as Department
from shared.events.registry import DomainEvent, FamilyEvent, event, examples

E1 = "8b9c0d1e-2f3a-4b4c-9d5e-6f7a8b9c0d1e"
E2 = "9c0d1e2f-3a4b-4c5d-8e6f-7a8b9c0d1e2f"
E3 = "0d1e2f3a-4b5c-4d6e-9f7a-8b9c0d1e2f3a"
F = "0b6f7c2e-8a51-4f0e-9a43-3f1d2c9b7a10"



class SiteYearEvent(DomainEvent):
    site_id: Code
    year: int

    def partition_key(self) -> str:
        return f"{self.site_id}:{self.year}"


@event("finance", "budget-set")
class BudgetSet(SiteYearEvent):
    """A site's yearly operating cost and its pool (råderum) contribution, in øre."""

    model_config = examples({"site_id": "gellerup", "year": 2026, "total_ore": 680_000_000,
                              "pool_ore": 350_000_000})
    total_ore: int
    pool_ore: int


@event("finance", "allocation-computed")
class AllocationComputed(SiteYearEvent):
    """One department's share of a site's year, by its stationed FTE-days."""

    model_config = examples({"site_id": "gellerup", "year": 2026, "department": "sundhed-og-omsorg",
                              "amount_ore": 45_000_000, "fte_days": "547.5"})
    department: Department
    amount_ore: int
    fte_days: DecimalText


@event("finance", "settlement-issued")
class SettlementIssued(SiteYearEvent):
    """A charge to one department for a period, entered in the ledger."""

    model_config = examples({"site_id": "gellerup", "year": 2026, "department": "boern-og-unge",
                              "entry_id": E1, "period_start": "2026-01-01", "period_end": "2026-03-31",
                              "amount_ore": 14_794_521})
    department: Department
    entry_id: UUID
    period_start: date
    period_end: date
    amount_ore: int


@event("finance", "correction-posted")
class CorrectionPosted(SiteYearEvent):
    """A charge was corrected: a reversing entry and a new entry, the original kept."""

    model_config = examples({"site_id": "gellerup", "year": 2026, "department": "boern-og-unge",
                              "original_entry_id": E1, "reversal_entry_id": E2, "correction_entry_id": E3,
                              "amount_ore": 14_000_000})
    department: Department
    original_entry_id: UUID
    reversal_entry_id: UUID
    correction_entry_id: UUID
    amount_ore: int


class AreaCost(BaseModel):
    """A family's yearly expenditure in one area, before enrolment and now, in øre."""

    area: Literal["income_support", "service_act", "childrens_act"]
    baseline_ore: int
    current_ore: int


@event("finance", "family-costs-recorded")
class FamilyCostsRecorded(FamilyEvent):
    """A family's yearly expenditure by area was entered or imported (amounts and codes only)."""

    model_config = examples({"family_id": F, "site_id": "gellerup", "source": "imported", "areas": [
        {"area": "income_support", "baseline_ore": 18_000_000, "current_ore": 9_000_000},
        {"area": "childrens_act", "baseline_ore": 6_000_000, "current_ore": 4_500_000}]})
    source: Literal["entered", "imported"]
    areas: list[AreaCost]


@event("finance", "grant-recorded")
class GrantRecorded(DomainEvent):
    """External funding of a site was recorded: a grant's amount over its period and what it pays
    for (codes and amounts only). No department receives it: the coordination group reads funding
    over REST, and each department sees the effect in its own allocation and charges."""

    model_config = examples({"grant_id": E1, "site_id": "gellerup", "code": "pilot-foundation-grant",
                              "funder": "private-foundation", "period_start": "2019-01-01",
                              "period_end": "2022-12-31", "amount_ore": 2_300_000_000,
                              "pays_for": "operating_cost"})
    grant_id: UUID
    site_id: Code
    code: Code
    funder: Code
    period_start: date
    period_end: date
    amount_ore: int
    pays_for: Literal["operating_cost", "pool", "departments"]

    def partition_key(self) -> str:
        return self.site_id
