"""Request and response bodies of external funding (grants). Amounts are integer øre."""

from __future__ import annotations

import uuid
from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from services.finance.grants import PaysFor
from shared.codes import Code
from shared.money import Ore

PAYS_FOR = ("What the grant pays for, and so whose payment it reduces: operating_cost (the råderum "
            "and the departments in proportion to their parts of the budget), pool (the råderum's "
            "part) or departments (the departments' co-financing, each by its FTE-days).")


class GrantIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "site_id": "gellerup", "code": "pilot-foundation-grant", "funder": "private-foundation",
        "period_start": "2019-01-01", "period_end": "2022-12-31", "amount_ore": 2_300_000_000,
        "pays_for": "operating_cost"}]})
    site_id: Code
    code: Code = Field(description="The grant's own code, unique per site (e.g. pilot-foundation-grant).")
    funder: Code = Field(description="Who pays it, as a code (e.g. private-foundation); no names of persons.")
    period_start: date = Field(description="The first day the grant pays for.")
    period_end: date = Field(description="The last day the grant pays for (included).")
    amount_ore: Ore = Field(description="The whole grant over its period, in øre (1 krone = 100 øre).")
    pays_for: PaysFor = Field(description=PAYS_FOR)


class GrantYearRead(BaseModel):
    year: int
    amount_ore: int = Field(description="The grant's part of this calendar year, by its days in it, in øre.")


class GrantRead(BaseModel):
    id: uuid.UUID
    site_id: str
    code: str
    funder: str
    period_start: date
    period_end: date
    amount_ore: int = Field(description="The whole grant over its period, in øre.")
    pays_for: PaysFor = Field(description=PAYS_FOR)
    years: list[GrantYearRead] = Field(description="The grant spread over the calendar years of its period.")


class GrantShareRead(BaseModel):
    grant_id: uuid.UUID
    code: str
    funder: str
    pays_for: PaysFor
    amount_ore: int = Field(description="The grant's part of this year, in øre.")
    pool_reduction_ore: int = Field(description="What it takes off the råderum's payment this year, in øre.")
    departments_reduction_ore: int = Field(
        description="What it takes off the departments' payments together this year, in øre.")
    unused_ore: int = Field(description=(
        "The part of this year's amount that reduced nobody's payment, because what it pays for was "
        "already nought (or there is no budget for the year), in øre."))


class FundingRead(BaseModel):
    """One site's year: the budget and who pays it once external funding is taken off."""

    site_id: str
    year: int
    total_ore: int | None = Field(description="The site's whole budget for the year, in øre (null: none).")
    external_ore: int = Field(description="What the grants pay of total_ore this year, in øre.")
    pool_before_grants_ore: int | None = Field(description="The budget's råderum part, in øre.")
    pool_ore: int | None = Field(description="What the råderum pays after the grants, in øre.")
    departments_before_grants_ore: int | None = Field(
        description="The departments' part of the budget (total − råderum part), in øre.")
    departments_ore: int | None = Field(
        description="What the departments together pay after the grants, in øre; split by FTE-days.")
    grants: list[GrantShareRead]
