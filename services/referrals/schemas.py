"""Request and response bodies of the referrals API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.codes import Code
from shared.departments import Department


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OfferIn(Strict):
    code: Code
    department: Department
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    required_fields: list[str] = Field(min_length=1, max_length=10)
    sla_days: int = Field(ge=1, le=365)
    active: bool = True


class OfferRead(BaseModel):
    code: str
    department: str
    title: str
    description: str
    required_fields: list[str]
    sla_days: int
    active: bool


class ReferralIn(Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "family_id": "0b6f7c2e-8a51-4f0e-9a43-3f1d2c9b7a10", "offer_code": "physical-rehabilitation",
        "person_id": "5d0c3e1a-77b2-4c8e-a1f4-2e9b6d3c8a01", "priority": "routine",
        "reason": "Ondt i ryggen, vil gerne kunne arbejde", "fields": {
            "person_id": "5d0c3e1a-77b2-4c8e-a1f4-2e9b6d3c8a01", "health_concern_code": "back_pain"}}]})
    family_id: uuid.UUID
    offer_code: str = Field(max_length=80)
    person_id: uuid.UUID | None = None
    priority: Literal["routine", "urgent"] = "routine"
    reason: str = Field(min_length=1, max_length=1000)
    fields: dict[str, str] = Field(default_factory=dict, max_length=10)


class FieldsIn(Strict):
    fields: dict[str, str] = Field(max_length=10)


class ReasonIn(Strict):
    reason_code: Code


class CompleteIn(Strict):
    outcome_code: Code


class StatusIn(Strict):
    business_status: str = Field(min_length=1, max_length=80)


class HistoryRead(BaseModel):
    from_state: str | None
    to_state: str
    by: str
    reason_code: str | None
    at: datetime


class ReferralRead(BaseModel):
    id: uuid.UUID
    family_id: uuid.UUID
    site_id: str
    offer_code: str
    target_department: str
    person_id: uuid.UUID | None
    priority: str
    fields: dict[str, str] | None = Field(
        description="The information the offer needs; for the team and the receiving department only")
    state: str
    business_status: str | None
    outcome_code: str | None
    reason_code: str | None
    due_at: datetime | None
    overdue: bool
    reason: str | None = Field(default=None, description="Team-internal: shown to the team only")
    history: list[HistoryRead] = []


class OverdueReport(BaseModel):
    flagged: int = Field(description="How many referrals this check newly flagged as overdue")
