"""A referral is seen only by the department it is addressed to (besides the domain topic)."""

from __future__ import annotations

from shared.departments import Department
from shared.events import referrals as ev
from shared.slices.policy import OWN_DEPARTMENT, SliceRule, when

FIELDS = ("referral_id", "offer_code", "target_department", "person_id", "priority", "state", "at", "due_at",
          "reason_code", "outcome_code")
EVENTS = (ev.ReferralSent, ev.ReferralAccepted, ev.ReferralDeclined, ev.ReferralStarted, ev.ReferralCompleted,
          ev.ReferralCancelled, ev.ReferralPutOnHold, ev.ReferralResumed, ev.ReferralOverdue,
          ev.ReferralStatusNoted)

RULES = [SliceRule(department, model, FIELDS, when=when(received_by=OWN_DEPARTMENT),
                   reason="referrals the department has received: its inbox and its own work. A "
                          "draft, and a draft cancelled unsent, stay with the team")
         for department in Department for model in EVENTS]
# Drafts stay in the team until they are sent: no rule for ReferralDrafted.
