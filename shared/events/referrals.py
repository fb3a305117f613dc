"""Events of the referrals service: one per lifecycle transition. Codes only, never free text."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from shared.codes import Code
from shared.departments import DepartmentSlug as Department
from shared.events.registry import FamilyEvent, event, examples

_BASE = {"family_id": "0b6f7c2e-8a51-4f0e-9a43-3f1d2c9b7a10", "site_id": "gellerup",
         "referral_id": "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", "offer_code": "physical-rehabilitation",
         "target_department": "sundhed-og-omsorg", "person_id": "5d0c3e1a-77b2-4c8e-a1f4-2e9b6d3c8a01",
         "priority": "routine", "at": "2026-03-02T10:00:00Z", "due_at": "2026-03-16T10:00:00Z",
         "received_by": "sundhed-og-omsorg"}
State = Literal["draft", "sent", "accepted", "in_progress", "completed", "declined", "cancelled", "on_hold"]


class ReferralEvent(FamilyEvent):
    """Common fields of every referral event."""

    referral_id: UUID
    offer_code: Code
    target_department: Department
    person_id: UUID | None = None
    priority: Literal["routine", "urgent"]
    state: State
    at: datetime
    due_at: datetime | None = None
    reason_code: Code | None = None
    outcome_code: Code | None = None
    #: The department that has received the referral (the team sent it), else empty: a draft, or
    #: a draft cancelled unsent. Only this department gets the event on its topic, so it learns
    #: nothing of drafts. Optional because it was added later; events without it go to no
    #: department topic.
    received_by: Department | None = None


def _referral_event(name: str, state: str, doc: str, **extra: str | None) -> type[ReferralEvent]:
    example = {**_BASE, "state": state, **extra}
    model = type("".join(part.title() for part in name.split("-")), (ReferralEvent,), {
        "__doc__": doc, "__module__": __name__,
        "model_config": examples(example)})
    return event("referrals", name)(model)


ReferralDrafted = _referral_event("referral-drafted", "draft", "A referral was drafted (not yet sent).",
                                  due_at=None, received_by=None)
ReferralSent = _referral_event("referral-sent", "sent", "A referral was sent to the department's inbox.")
ReferralAccepted = _referral_event("referral-accepted", "accepted", "The department accepted the referral.")
ReferralDeclined = _referral_event("referral-declined", "declined", "The department declined, with a reason.",
                                   reason_code="outside_target_group")
ReferralStarted = _referral_event("referral-started", "in_progress", "The department started the work.")
ReferralCompleted = _referral_event("referral-completed", "completed", "The department completed the work.",
                                    outcome_code="goal_met")
ReferralCancelled = _referral_event("referral-cancelled", "cancelled", "The referral was cancelled.",
                                    reason_code="consent_revoked")
ReferralPutOnHold = _referral_event("referral-put-on-hold", "on_hold", "The referral waits (e.g. consent).",
                                    reason_code="consent_revoked")
ReferralResumed = _referral_event("referral-resumed", "accepted",
                                  "The team resumed a referral on hold, back to the state it had before "
                                  "(the family's consent covers the department again).")
ReferralOverdue = _referral_event("referral-overdue", "sent", "The referral passed its due date (once).")
ReferralStatusNoted = _referral_event("referral-status-noted", "accepted",
                                      "The department changed its own business status label.",
                                      reason_code="waiting_for_first_appointment")
