"""Request and response bodies of partners' tips: the partner's view holds nothing about a family."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from services.intake.tips import TipOutcome, TipReason, TipState
from shared.codes import Code


class TipIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"site_id": "gellerup", "address": "Gudrunsvej 10, 1. th, 8220 Brabrand",
         "reason": "long_term_unemployment"}]})
    site_id: Code = Field(description="The site whose team should follow the tip up.")
    address: str = Field(min_length=1, max_length=300, description=(
        "The household's address: street, number and (optionally) floor and door. No names, no "
        "CPR numbers: it must lie in the site's target area."))
    reason: TipReason = Field(description="Why the partner passes the address on, as a code.")


class TipStatus(BaseModel):
    """What a partner may know about its own tip: that it was received and whether it has been
    followed up. Nothing the team found."""

    id: uuid.UUID
    received_at: datetime
    state: TipState = Field(description="received, or followed_up once the team has acted on it.")


class TipFollowUpIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"outcome": "registered", "household_id": "0b6f7c2e-8a51-4f0e-9a43-3f1d2c9b7a10"},
        {"outcome": "not_found"}]})
    outcome: TipOutcome = Field(description=(
        "What the team found: registered (the household was registered from the tip), already_known, "
        "not_found, declined or not_eligible."))
    household_id: uuid.UUID | None = Field(default=None, description=(
        "The household of the site the tip led to: required for registered and already_known, "
        "refused for the other outcomes."))


class TipRead(BaseModel):
    """The team's view of a tip of its site."""

    id: uuid.UUID
    site_id: str
    address: str
    reason: TipReason
    state: TipState
    outcome: TipOutcome | None
    household_id: uuid.UUID | None
    received_at: datetime
    followed_up_at: datetime | None


class TipSiteSummary(BaseModel):
    """One site's tips in aggregate (counts only): for the steering report's funnel."""

    site_id: str
    received: int = Field(description="Tips received (in either state).")
    followed_up: int = Field(description="Of those, tips the team has followed up.")
    outcomes: dict[str, int] = Field(description="Followed-up tips per outcome code (every outcome listed).")
    households: dict[str, int] = Field(description=(
        "The funnel of the households identified by a partner's tip (followed up as registered): "
        "how many reached at least each stage, counted as GET /v1/funnel counts."))


class TipSummaryRead(BaseModel):
    site_id: str | None = Field(description="The site asked for; null for all sites.")
    sites: list[TipSiteSummary]
