"""Request and response bodies of the finance API. Amounts are integer øre."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.codes import Code
from shared.departments import Department
from shared.money import Ore


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


TOTAL_ORE = "The site's whole operating budget for the year, in øre (1 krone = 100 øre)."
POOL_ORE = ("The råderum part, in øre: what the municipality's shared budget room (råderum) pays of "
            "total_ore. The departments co-finance the rest.")


class BudgetIn(Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"site_id": "gellerup", "year": 2026, "total_ore": 680000000, "pool_ore": 350000000}]})
    site_id: Code
    year: int = Field(ge=2019, le=2100)
    total_ore: Ore = Field(description=TOTAL_ORE)
    pool_ore: Ore | None = Field(default=None, description=f"{POOL_ORE} Give it or pool_share, not both.")
    pool_share: Decimal | None = Field(default=None, max_digits=5, decimal_places=4,
                                       description="The råderum part as a share of total_ore (0.5 = half), "
                                                   "instead of pool_ore; rounded half up to whole øre.")


class BudgetRead(BaseModel):
    site_id: str
    year: int
    total_ore: int = Field(description=TOTAL_ORE)
    pool_ore: int = Field(description=POOL_ORE)


class RosterEntry(Strict):
    department: Department
    role: Literal["leader", "staff"] = "staff"
    fte: Decimal = Field(max_digits=4, decimal_places=2)
    starts_on: date
    ends_on: date | None = None


class PreviewIn(BudgetIn):
    roster: list[RosterEntry] = Field(min_length=1, max_length=200)


class AllocationRead(BaseModel):
    site_id: str
    year: int
    total_ore: int = Field(description=TOTAL_ORE)
    pool_ore: int = Field(description=POOL_ORE + " After external funding: what the råderum still pays.")
    departments: dict[str, int] = Field(description=(
        "Each department's co-financing share, in øre, after external funding: the departments' part "
        "(total_ore − pool_before_grants_ore) less what grants pay of it, split by FTE-days."))
    external_ore: int = Field(default=0, description=(
        "What external funding (grants) pays of total_ore this year, in øre; pool_ore + the "
        "departments' shares + external_ore = total_ore."))
    pool_before_grants_ore: int | None = Field(default=None, description=(
        "The budget's råderum part before external funding, in øre (a preview counts no grants)."))
    fte_days: dict[str, Decimal] = Field(description="The stationed FTE-days each share is based on.")
    roster_as_of: datetime | None = Field(default=None, description=(
        "When casework made the latest roster change (a stationing started, changed or ended) that "
        "this allocation includes. A later stationing event from casework makes it stale. Null when "
        "no stationing is known, and for a preview (its roster is the request's)."))
    roster_event_id: str | None = Field(default=None, description=(
        "The CloudEvents id of that roster change, to match it against casework's events."))


class SettleIn(Strict):
    site_id: Code
    year: int = Field(ge=2019, le=2100)
    quarter: int | None = Field(default=None, ge=1, le=4, description="Omit for the whole year")


class EntryRead(BaseModel):
    id: uuid.UUID
    site_id: str
    department: str
    period_start: date
    period_end: date
    amount_ore: int = Field(description="What the department is charged for the period, in øre "
                                        "(a reversal is negative).")
    kind: str
    reverses: uuid.UUID | None


class StatementRead(BaseModel):
    site_id: str
    department: str
    year: int
    entries: list[EntryRead]
    balance_ore: int = Field(description="The sum of the entries, in øre: what the department owes.")
    external_funding_ore: int | None = Field(default=None, description=(
        "How much less the department pays for the year because of external funding (grants), in "
        "øre: its share of the year without the grants less its share with them, by the roster "
        "known now. Null while the site has no budget or no stationed staff for the year."))


class CorrectIn(Strict):
    amount_ore: Ore


class SavingsIn(Strict):
    site_id: Code
    baseline_ore: Ore = Field(description="Yearly public expenditure on the family before enrolment, in øre")
    current_ore: Ore = Field(description="Yearly public expenditure on the family now, in øre")


class FamilySavingsRead(BaseModel):
    family_id: uuid.UUID
    savings_per_year_ore: int = Field(description="Baseline minus current yearly expenditure, in øre.")
    derived: bool = Field(description="From outcome events and the rate table, not entered figures")


class SavingsRead(BaseModel):
    site_id: str | None
    families: int
    savings_per_year_ore: int = Field(description="The families' yearly savings together, in øre.")
    average_per_family_per_year_ore: int = Field(description="Yearly savings per family, in øre.")
    years: int
    over_years_ore: int = Field(description="The yearly savings times `years`, in øre.")
    pool_over_years_ore: int = Field(description="The year's råderum part after external grants (the "
                                                 "budgets' pool_ore less what grants for the operating cost "
                                                 "take off it) times `years`, in øre: what savings must "
                                                 "reach to break even.")
    break_even: bool
    per_family: list[FamilySavingsRead]


class AreaCostIn(Strict):
    baseline_ore: Ore = Field(description="Yearly expenditure in the area before enrolment, in øre")
    current_ore: Ore = Field(description="Yearly expenditure in the area now, in øre")


class FamilyCostsIn(Strict):
    site_id: Code
    areas: dict[Literal["income_support", "service_act", "childrens_act"], AreaCostIn] = Field(
        min_length=1, description="income_support (forsørgelse), service_act (Serviceloven), "
                                  "childrens_act (Barnets Lov); areas left out keep their figures")


class FamilyCostsRead(BaseModel):
    family_id: uuid.UUID
    site_id: str
    areas: dict[str, AreaCostIn]


class CostImportRead(BaseModel):
    families: int
    rows: int


class AreaSavingsRead(BaseModel):
    area: str
    families: int
    baseline_per_year_ore: int = Field(description="Yearly expenditure before enrolment, in øre")
    current_per_year_ore: int = Field(description="The families' yearly expenditure now, in øre")
    savings_per_year_ore: int = Field(description="Baseline minus current per year, in øre")
    average_per_family_per_year_ore: int = Field(description="Savings per year per family, in øre")


class AreaSavingsReportRead(BaseModel):
    site_id: str | None
    year: int
    families: int
    areas: list[AreaSavingsRead]
    total: AreaSavingsRead
    years: int
    over_years_ore: int = Field(description="The yearly savings times `years`, in øre")
    pool_per_year_ore: int = Field(description="The year's råderum part after external grants, in øre")
    pool_over_years_ore: int = Field(description="The råderum part times `years`, in øre")
    break_even: bool
    families_to_break_even: int | None
