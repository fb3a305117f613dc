"""Each department sees its own charges only. Budgets go to no department topic: the coordination
group reads them over REST. Nor do a family's costs by area (``FamilyCostsRecorded``): they are
the basis of the savings report, read in aggregate, and each department has its own figures in
its own systems already. Nor does external funding (``GrantRecorded``): a department sees its
effect in its own allocation and charges."""

from __future__ import annotations

from shared.departments import Department
from shared.events.finance import AllocationComputed, CorrectionPosted, SettlementIssued
from shared.slices.policy import OWN_DEPARTMENT, SliceRule, when

RULES = [SliceRule(department, model, fields, when=when(department=OWN_DEPARTMENT),
                   reason="the department's own share of the team's cost")
         for department in Department
         for model, fields in (
             (AllocationComputed, ("year", "department", "amount_ore", "fte_days")),
             (SettlementIssued, ("year", "department", "entry_id", "period_start", "period_end",
                                 "amount_ore")),
             (CorrectionPosted, ("year", "department", "original_entry_id", "reversal_entry_id",
                                 "correction_entry_id", "amount_ore")))]
