"""Which casework events each department receives, and why."""

from __future__ import annotations

from shared.departments import Department
from shared.events.casework import (
    EmployerFollowUpRecorded,
    EmploymentStatusRecorded,
    EscalationRaised,
    FritidspasUsed,
    GoalChanged,
    JobMatchDecided,
    LeisureJobRecorded,
    MakkerparAssigned,
    MakkerparEnded,
    PlacementStarted,
    SchoolAbsenceRecorded,
    StaffStationed,
    StationingEnded,
    WellbeingAssessed,
    YouthEducationStarted,
)
from shared.slices.policy import OWN_DEPARTMENT, SliceRule, when

YOUTH_FIELDS = ("person_id", "started_on", "programme")
GOAL_FIELDS = ("goal_id", "person_id", "life_area", "state", "achievement")
GOAL_AREAS = {
    Department.SOCIAL_AND_EMPLOYMENT: ("employment", "education", "economy", "housing", "daily_structure"),
    Department.CHILDREN_AND_YOUNG_PEOPLE: ("children_school_wellbeing",),
    Department.HEALTH_AND_CARE: ("health",),
    Department.CULTURE_AND_CITIZEN_SERVICES: ("leisure_network",),
}

RULES: list[SliceRule] = []
for _d in Department:
    RULES += [
        SliceRule(_d, MakkerparAssigned, ("staff_ids", "disciplines"),
                  reason="the family's one entry point: who to call about this family"),
        SliceRule(_d, MakkerparEnded, ("assignment_id", "reason_code"),
                  reason="the entry point the department was given no longer holds"),
        SliceRule(_d, GoalChanged, GOAL_FIELDS, when=when(life_area=GOAL_AREAS[_d]),
                  reason="goals in the life areas the department works with, never the family's own words"),
        SliceRule(_d, EscalationRaised, ("escalation_id", "step", "target_department", "offer_code",
                                         "person_id", "priority"),
                  when=when(target_department=OWN_DEPARTMENT),
                  reason="a specialist task the team asks this department to help with"),
        SliceRule(_d, StaffStationed, ("stationing_id", "staff_id", "department", "discipline", "role", "fte",
                                       "starts_on", "ends_on"),
                  when=when(department=OWN_DEPARTMENT),
                  reason="the department's own staff in the team (it pays for them)"),
        SliceRule(_d, StationingEnded, ("stationing_id", "staff_id", "department", "ends_on"),
                  when=when(department=OWN_DEPARTMENT),
                  reason="the department's own staff leaving the team"),
    ]
RULES += [
    SliceRule(Department.SOCIAL_AND_EMPLOYMENT, JobMatchDecided,
              ("match_id", "opening_id", "person_id", "job_kind", "decision"),
              reason="job matches are the job centre's follow-up"),
    SliceRule(Department.SOCIAL_AND_EMPLOYMENT, PlacementStarted,
              ("match_id", "person_id", "job_kind", "starts_on", "hours_per_week"),
              reason="placements change the person's benefits and the flex-job subsidy"),
    SliceRule(Department.SOCIAL_AND_EMPLOYMENT, EmployerFollowUpRecorded,
              ("match_id", "person_id", "on", "expectations_aligned"),
              reason="keeping a placement is the job centre's follow-up (the note stays in the team)"),
    SliceRule(Department.CHILDREN_AND_YOUNG_PEOPLE, LeisureJobRecorded,
              ("person_id", "started_on", "ended_on"),
              reason="young people's leisure jobs are part of their wellbeing and schooling"),
    SliceRule(Department.CHILDREN_AND_YOUNG_PEOPLE, FritidspasUsed, ("person_id", "activity", "on"),
              reason="children's leisure activities"),
    SliceRule(Department.CULTURE_AND_CITIZEN_SERVICES, FritidspasUsed, ("person_id", "activity", "on"),
              reason="the department runs the fritidspas scheme"),
    SliceRule(Department.SOCIAL_AND_EMPLOYMENT, EmploymentStatusRecorded, ("person_id", "status", "since"),
              reason="employment and job-centre follow-up is this department's task"),
    SliceRule(Department.CHILDREN_AND_YOUNG_PEOPLE, SchoolAbsenceRecorded,
              ("person_id", "term", "absence_percent"),
              reason="children's schooling and wellbeing are this department's task"),
    SliceRule(Department.CHILDREN_AND_YOUNG_PEOPLE, WellbeingAssessed, ("score",),
              reason="the family's wellbeing matters to the children's wellbeing"),
    SliceRule(Department.CHILDREN_AND_YOUNG_PEOPLE, YouthEducationStarted, YOUTH_FIELDS,
              reason="young people's education is this department's task"),
    SliceRule(Department.SOCIAL_AND_EMPLOYMENT, YouthEducationStarted, YOUTH_FIELDS,
              reason="education for 15–25-year-olds is followed up by the job centre's youth guidance"),
]
# FamilyAnswerRecorded (the adults' own answers about health, trust and quality of life) and
# ComparisonCohortLoaded (evaluation aggregates) go to no department: they serve the evaluation,
# read in aggregate through the outcomes report.
