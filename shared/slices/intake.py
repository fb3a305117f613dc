"""Which intake events each department receives. Screening and outreach go to none: they
happen before the family has consented to share anything. Family events carry ``shared_with``,
so the policy sends them only to the departments the family's consent covers."""

from __future__ import annotations

from shared.departments import Department
from shared.events.intake import (
    ConsentGiven,
    ConsentGivenV2,
    ConsentRevoked,
    FamilyEnrolled,
    FamilyExited,
    MemberAdded,
)
from shared.slices.policy import OWN_DEPARTMENT, SliceRule, when

RULES: list[SliceRule] = []
for _department in Department:
    RULES += [
        SliceRule(_department, FamilyEnrolled, ("members.person_id", "members.role", "members.birth_year"),
                  reason="the one family entry point: a department the family's consent covers joins "
                         "its data on the family and its members' ids, roles and birth years (no "
                         "names, no CPR); departments without consent do not learn of the family"),
        SliceRule(_department, MemberAdded, ("member.person_id", "member.role", "member.birth_year"),
                  reason="a new member of a family the department follows with the family's consent"),
        SliceRule(_department, FamilyExited, ("reason",),
                  reason="the department stops its work with the family when it leaves"),
        SliceRule(_department, ConsentGiven, ("consent_id", "person_id", "departments", "expires_on"),
                  when=when(departments=OWN_DEPARTMENT),
                  reason="the legal basis for sharing with this department; only consents naming it"),
        SliceRule(_department, ConsentGivenV2, ("consent_id", "person_id", "departments", "expires_on"),
                  when=when(departments=OWN_DEPARTMENT),
                  reason="the legal basis for sharing with this department; only consents naming it "
                         "(the purposes per department stay in the domain topic: a department is not "
                         "told what the others were given)"),
        SliceRule(_department, ConsentRevoked, ("consent_id", "person_id", "departments", "state"),
                  when=when(departments=OWN_DEPARTMENT),
                  reason="the department must stop using the family's data at once"),
    ]
