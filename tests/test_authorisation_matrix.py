"""Who may call what: every endpoint of every service against every kind of caller.

The tables below are the expectation, one row per endpoint and one column per caller kind
(columns in ``tests.authz_support.CALLERS``):

    ts / ts-v     team staff of Gellerup (the fixtures' site) / of Viby (another site)
    tl / tl-v     team leader of Gellerup / of Viby
    sfb bu so kb  department staff of Sociale Forhold og Beskæftigelse, Børn og Unge,
                  Sundhed og Omsorg, Kultur og Borgerservice
    fin coo sys adm   finance, the coordination group, a municipal system (schedulers), admin
    dp            data protection: the audit log and subject-access reports, nothing else
    ev            an evaluator: aggregate outcomes and comparison cohorts
    pt            a partner (a caretaker, the housing-social plan, a civil-society organisation):
                  passes on tips and reads only its own tips' state
    none          no token

Cells:

- ``ok``  the caller is past authorisation. The general rule is "not 401/403, not a 404 from an
  object-level refusal, not 5xx"; a 409 or 422 is a domain answer given *after* authorisation.
  Here every id in the path is a real object of the right site and department and every body is
  valid, so the test holds allowed callers to 2xx, or 409 when an earlier caller already made the
  change (the referral was already sent, the CPR is already registered, …). A 404 is then an
  object-level refusal and a 422 a broken test body that could hide one: both are mismatches.
- ``401`` no or a bad token; ``403`` the role may not call the function at all; ``404`` the
  function is allowed but the object belongs to another site or department (the answer is the
  same as for an object that does not exist: no existence leak).
- ``422`` only where the *body* names another site (a job opening's site: sites are public, so
  nothing can leak) or another site's family (a referral draft), which the service treats as an
  unknown value of the field; ``BODY_ID_PROBES`` checks the answer is word for word the answer to
  a random id, so it leaks nothing.
- ``pub`` needs no token (documentation and health probes).

Rules the tables follow (from docs/services.md and docs/architecture.md): team staff and leaders
work with their own site's families in full; department staff see only their department's slice
and referral inbox and their own statements; finance and coordination the finance functions
(coordination also the outcomes, the funnel, casework's family overview and, with admin, the
audit log and the full family view); admin the catalogue (sites, offers, staff and stationing)
and the audit log; system the schedulers and intake's register work (import, households of all
sites, as intake's module docstring says).

Bodies: each POST/PUT sends one minimal valid body, the same for every caller, so a refused
caller is refused for who it is and never because of its body; validation cannot hide a missing
check, and a refused caller must get exactly its 401/403/404 (never 2xx, never a 422).

Reads run first, so they see the fixtures as set up; then the writes, in table order (a later
caller may get 409 because an earlier one already made the change: still "allowed"). Then every
endpoint with an id in its path is called again with random ids: whoever may call the function
gets 404, everyone else exactly the answer the real object gave them. The test fails if the app
serves a route with no row here, so a new endpoint cannot escape the matrix.

Each service runs once on PostgreSQL without a broker; all mismatching cells are listed in one
assertion message.
"""

from __future__ import annotations

import pytest

from shared.broker import free_port
from tests.authz_support import (
    SERVICES,
    MatrixRun,
    park_an_event,
    parse_matrix,
    referral_state_fixture,
    report,
)
from tests.support import service_api

pytestmark = pytest.mark.postgres

HEADER = "                                                  ts  ts-v tl  tl-v sfb bu  so  kb  fin coo sys adm dp  ev  pt  none"  # noqa: E501

OPERATIONS = """
# Documentation and probes: no token needed.
GET  /openapi.json                                        pub pub pub pub pub pub pub pub pub pub pub pub pub pub pub pub
GET  /docs                                                pub pub pub pub pub pub pub pub pub pub pub pub pub pub pub pub
GET  /docs/oauth2-redirect                                pub pub pub pub pub pub pub pub pub pub pub pub pub pub pub pub
GET  /redoc                                               pub pub pub pub pub pub pub pub pub pub pub pub pub pub pub pub
GET  /healthz                                             pub pub pub pub pub pub pub pub pub pub pub pub pub pub pub pub
GET  /readyz                                              pub pub pub pub pub pub pub pub pub pub pub pub pub pub pub pub
GET  /metrics                                             pub pub pub pub pub pub pub pub pub pub pub pub pub pub pub pub
GET  /asyncapi.json                                       pub pub pub pub pub pub pub pub pub pub pub pub pub pub pub pub
# Who saw a person's or family's data: admin, the coordination group and data protection.
GET  /audit                                               403 403 403 403 403 403 403 403 403 ok  403 ok  ok  403 403 401
# What this service holds about a person and who saw it: data protection only.
GET  /v1/persons/{person_id}/subject-access               403 403 403 403 403 403 403 403 403 403 403 403 ok  403 403 401
# Events the relay parked: admin only. Retry queues the fixture's parked event, so the discard
# after it is a 409 (no longer parked): still past authorisation.
GET  /v1/outbox/parked                                    403 403 403 403 403 403 403 403 403 403 403 ok  403 403 403 401
POST /v1/outbox/parked/{event_id}/retry                   403 403 403 403 403 403 403 403 403 403 403 ok  403 403 403 401
POST /v1/outbox/parked/{event_id}/discard                 403 403 403 403 403 403 403 403 403 403 403 ok  403 403 403 401
"""  # noqa: E501

INTAKE = HEADER + OPERATIONS + """
# The family view: the fixture household's only department-visible event is a consent naming
# Sundhed og Omsorg, so that department sees it and the others are told there is no such family.
GET  /v1/families/{family_id}/slice                       ok  404 ok  404 404 404 ok  404 403 ok  403 ok  403 403 403 401
GET  /v1/sites                                            ok  ok  ok  ok  403 403 403 403 403 ok  ok  403 403 403 403 401
POST /v1/sites                                            403 403 403 403 403 403 403 403 403 403 403 ok  403 403 403 401
# Registering in another site names the site in the body; intake answers as for a household it
# cannot see.
POST /v1/households                                       ok  404 ok  404 403 403 403 403 403 403 ok  403 403 403 403 401
GET  /v1/households                                       ok  ok  ok  ok  403 403 403 403 403 403 ok  403 403 403 403 401
GET  /v1/households/{household_id}                        ok  404 ok  404 403 403 403 403 403 403 ok  403 403 403 403 401
GET  /v1/households/{household_id}/consents               ok  404 ok  404 403 403 403 403 403 403 ok  403 403 403 403 401
GET  /v1/households/{household_id}/consents/{consent_id}  ok  404 ok  404 403 403 403 403 403 403 ok  403 403 403 403 401
POST /v1/households/{household_id}/screen                 ok  404 ok  404 403 403 403 403 403 403 ok  403 403 403 403 401
POST /v1/households/{household_id}/outreach               ok  404 ok  404 403 403 403 403 403 403 ok  403 403 403 403 401
POST /v1/households/{household_id}/consents               ok  404 ok  404 403 403 403 403 403 403 ok  403 403 403 403 401
POST /v1/households/{household_id}/consents/{consent_id}/renew   ok  404 ok  404 403 403 403 403 403 403 ok  403 403 403 403 401
POST /v1/households/{household_id}/enrol                  ok  404 ok  404 403 403 403 403 403 403 ok  403 403 403 403 401
POST /v1/households/{household_id}/members                ok  404 ok  404 403 403 403 403 403 403 ok  403 403 403 403 401
PATCH /v1/households/{household_id}/members/{person_id}   ok  404 ok  404 403 403 403 403 403 403 ok  403 403 403 403 401
POST /v1/households/{household_id}/consents/{consent_id}/revoke  ok  404 ok  404 403 403 403 403 403 403 ok  403 403 403 403 401
POST /v1/households/{household_id}/exit                   ok  404 ok  404 403 403 403 403 403 403 ok  403 403 403 403 401
POST /v1/consents/expire-due                              403 403 403 403 403 403 403 403 403 403 ok  403 403 403 403 401
GET  /v1/funnel                                           ok  ok  ok  ok  403 403 403 403 403 ok  ok  403 403 403 403 401
# The subject-access report across the four services: data protection only (the matrix asks for a
# CPR number nobody has, so the report is empty and no other service needs to run).
POST /v1/subject-access                                   403 403 403 403 403 403 403 403 403 403 403 403 ok  403 403 401
POST /v1/imports                                          403 403 ok  ok  403 403 403 403 403 403 ok  403 403 403 403 401
# Target areas are reference data (streets): admins keep them, every intake user reads them.
PUT  /v1/sites/{site_id}/area                             403 403 403 403 403 403 403 403 403 403 403 ok  403 403 403 401
POST /v1/sites/{site_id}/area/import                      403 403 403 403 403 403 403 403 403 403 403 ok  403 403 403 401
GET  /v1/sites/{site_id}/area                             ok  ok  ok  ok  403 403 403 403 403 ok  ok  ok  403 403 403 401
# The cohort profile is aggregates only, read like the funnel (team roles get their own site).
GET  /v1/profile                                          ok  ok  ok  ok  403 403 403 403 403 ok  ok  403 403 403 403 401
# Partners' tips: a partner submits and reads its own tips' state (the fixture's tip is the pt
# caller's); the site's team reads and follows up its site's tips (another site's is absent); the
# counts are read like the funnel.
POST /v1/tips                                             403 403 403 403 403 403 403 403 403 403 403 403 403 403 ok  401
GET  /v1/tips/mine                                        403 403 403 403 403 403 403 403 403 403 403 403 403 403 ok  401
GET  /v1/tips/{tip_id}/status                             403 403 403 403 403 403 403 403 403 403 403 403 403 403 ok  401
GET  /v1/tips                                             ok  ok  ok  ok  403 403 403 403 403 403 ok  403 403 403 403 401
GET  /v1/tips/summary                                     ok  ok  ok  ok  403 403 403 403 403 ok  ok  403 403 403 403 401
POST /v1/tips/{tip_id}/follow-up                          ok  404 ok  404 403 403 403 403 403 403 ok  403 403 403 403 401
"""  # noqa: E501

CASEWORK = HEADER + OPERATIONS + """
# The family's department-visible events are a health goal (Sundhed og Omsorg) and a job match
# (Sociale Forhold og Beskæftigelse); the other departments are told there is no such family.
GET  /v1/families/{family_id}/slice                       ok  404 ok  404 ok  404 ok  404 403 ok  403 ok  403 403 403 401
# Lists show the caller's own site (Viby's are empty); coordination sees the family overview.
GET  /v1/families                                         ok  ok  ok  ok  403 403 403 403 403 ok  403 403 403 403 403 401
GET  /v1/job-openings                                     ok  ok  ok  ok  403 403 403 403 403 403 403 403 403 403 403 401
GET  /v1/job-matches                                      ok  ok  ok  ok  403 403 403 403 403 403 403 403 403 403 403 401
GET  /v1/staff                                            ok  ok  ok  ok  403 403 403 403 403 403 403 ok  403 403 403 401
GET  /v1/families/{family_id}                             ok  404 ok  404 403 403 403 403 403 403 403 403 403 403 403 401
GET  /v1/families/{family_id}/contacts                    ok  404 ok  404 403 403 403 403 403 403 403 403 403 403 403 401
GET  /v1/families/{family_id}/escalations                 ok  404 ok  404 403 403 403 403 403 403 403 403 403 403 403 401
GET  /v1/families/{family_id}/measurements                ok  404 ok  404 403 403 403 403 403 403 403 403 403 403 403 401
GET  /v1/families/{family_id}/entry-point                 ok  404 ok  404 403 403 403 403 403 403 403 403 403 403 403 401
GET  /v1/families/{family_id}/plan                        ok  404 ok  404 403 403 403 403 403 403 403 403 403 403 403 401
GET  /v1/outcomes                                         403 403 ok  ok  403 403 403 403 403 ok  403 403 403 ok  403 401
# Stationing is the leader's (own site) and admin's; another site is named in the body (403).
POST /v1/staff                                            403 403 ok  403 403 403 403 403 403 403 403 ok  403 403 403 401
POST /v1/stationings/{stationing_id}/end                  403 403 ok  404 403 403 403 403 403 403 403 ok  403 403 403 401
POST /v1/staff/{staff_id}/stationings                     403 403 ok  404 403 403 403 403 403 403 403 ok  403 403 403 401
POST /v1/families/{family_id}/goals                       ok  404 ok  404 403 403 403 403 403 403 403 403 403 403 403 401
POST /v1/families/{family_id}/goals/{goal_id}/state       ok  404 ok  404 403 403 403 403 403 403 403 403 403 403 403 401
PUT  /v1/families/{family_id}/plan/wishes                 ok  404 ok  404 403 403 403 403 403 403 403 403 403 403 403 401
POST /v1/families/{family_id}/goals/{goal_id}/actions     ok  404 ok  404 403 403 403 403 403 403 403 403 403 403 403 401
POST /v1/families/{family_id}/actions/{action_id}/status  ok  404 ok  404 403 403 403 403 403 403 403 403 403 403 403 401
POST /v1/families/{family_id}/escalations                 ok  404 ok  404 403 403 403 403 403 403 403 403 403 403 403 401
POST /v1/families/{family_id}/measurements/employment     ok  404 ok  404 403 403 403 403 403 403 403 403 403 403 403 401
POST /v1/families/{family_id}/measurements/school-absence ok  404 ok  404 403 403 403 403 403 403 403 403 403 403 403 401
POST /v1/families/{family_id}/measurements/network        ok  404 ok  404 403 403 403 403 403 403 403 403 403 403 403 401
POST /v1/families/{family_id}/measurements/wellbeing      ok  404 ok  404 403 403 403 403 403 403 403 403 403 403 403 401
POST /v1/families/{family_id}/measurements/leisure-job    ok  404 ok  404 403 403 403 403 403 403 403 403 403 403 403 401
POST /v1/families/{family_id}/measurements/fritidspas     ok  404 ok  404 403 403 403 403 403 403 403 403 403 403 403 401
POST /v1/families/{family_id}/contacts                    ok  404 ok  404 403 403 403 403 403 403 403 403 403 403 403 401
POST /v1/absences                                         ok  404 ok  404 403 403 403 403 403 403 403 403 403 403 403 401
# A comparison cohort is loaded by an evaluator only; the evaluator and the coordination group read
# it beside the report.
GET  /v1/comparison-cohorts/{cohort_id}                   403 403 403 403 403 403 403 403 403 ok  403 403 403 ok  403 401
GET  /v1/comparison-cohorts/{cohort_id}/report            403 403 403 403 403 403 403 403 403 ok  403 403 403 ok  403 401
POST /v1/comparison-cohorts                               403 403 403 403 403 403 403 403 403 403 403 403 403 ok  403 401
POST /v1/comparison-cohorts/import                        403 403 403 403 403 403 403 403 403 403 403 403 403 ok  403 401
POST /v1/families/{family_id}/measurements/youth-education ok  404 ok  404 403 403 403 403 403 403 403 403 403 403 403 401
POST /v1/families/{family_id}/measurements/family-answer  ok  404 ok  404 403 403 403 403 403 403 403 403 403 403 403 401
# The steering report: the coordination group only. It asks intake and finance for their
# aggregates, which the matrix does not run (their addresses lead nowhere), so the coordination
# group gets past authorisation to a 503; tests/casework/test_steering_report.py runs all three.
GET  /v1/reports/steering                                 403 403 403 403 403 403 403 403 403 503 403 403 403 403 403 401
# An opening names its site in the body; another site's is a field error (422, nothing to hide).
POST /v1/job-openings                                     ok  422 ok  422 403 403 403 403 403 403 403 403 403 403 403 401
POST /v1/job-openings/{opening_id}/candidates             ok  404 ok  404 403 403 403 403 403 403 403 403 403 403 403 401
POST /v1/job-matches/{match_id}/decision                  ok  404 ok  404 403 403 403 403 403 403 403 403 403 403 403 401
POST /v1/job-matches/{match_id}/follow-ups                ok  404 ok  404 403 403 403 403 403 403 403 403 403 403 403 401
POST /v1/families/{family_id}/makkerpar/reassign          ok  404 ok  404 403 403 403 403 403 403 403 403 403 403 403 401
"""  # noqa: E501

REFERRALS = HEADER + OPERATIONS + """
# The referral is sent to Sundhed og Omsorg: its inbox, nobody else's.
GET  /v1/families/{family_id}/slice                       ok  404 ok  404 404 404 ok  404 403 ok  403 ok  403 403 403 401
GET  /v1/offers                                           ok  ok  ok  ok  ok  ok  ok  ok  403 ok  ok  ok  403 403 403 401
GET  /v1/referrals                                        ok  ok  ok  ok  ok  ok  ok  ok  403 403 403 403 403 403 403 401
GET  /v1/referrals/{referral_id}                          ok  404 ok  404 404 404 ok  404 403 403 403 403 403 403 403 401
POST /v1/offers                                           403 403 403 403 403 403 403 403 403 403 403 ok  403 403 403 401
# The family is named in the body; another site's family is an unknown value of the field.
POST /v1/referrals                                        ok  422 ok  422 403 403 403 403 403 403 403 403 403 403 403 401
PUT  /v1/referrals/{referral_id}/fields                   ok  404 ok  404 403 403 403 403 403 403 403 403 403 403 403 401
POST /v1/referrals/{referral_id}/send                     ok  404 ok  404 403 403 403 403 403 403 403 403 403 403 403 401
POST /v1/referrals/{referral_id}/accept                   403 403 403 403 404 404 ok  404 403 403 403 403 403 403 403 401
POST /v1/referrals/{referral_id}/status                   403 403 403 403 404 404 ok  404 403 403 403 403 403 403 403 401
POST /v1/referrals/{referral_id}/start                    403 403 403 403 404 404 ok  404 403 403 403 403 403 403 403 401
POST /v1/referrals/{referral_id}/complete                 403 403 403 403 404 404 ok  404 403 403 403 403 403 403 403 401
POST /v1/referrals/{referral_id}/decline                  403 403 403 403 404 404 ok  404 403 403 403 403 403 403 403 401
POST /v1/referrals/{referral_id}/cancel                   ok  404 ok  404 403 403 403 403 403 403 403 403 403 403 403 401
POST /v1/referrals/{referral_id}/resume                   ok  404 ok  404 403 403 403 403 403 403 403 403 403 403 403 401
POST /v1/referrals/overdue-check                          403 403 403 403 403 403 403 403 403 403 ok  403 403 403 403 401
"""  # noqa: E501

#: A referral's own rows, for the states the main fixture does not show (``referral_state_fixture``).
REFERRAL_ROWS = HEADER + """
GET  /v1/families/{family_id}/slice                       ok  404 ok  404 404 404 {so} 404 403 ok  403 ok  403 403 403 401
GET  /v1/referrals/{referral_id}                          ok  404 ok  404 404 404 {so} 404 403 403 403 403 403 403 403 401
PUT  /v1/referrals/{referral_id}/fields                   ok  404 ok  404 403 403 403 403 403 403 403 403 403 403 403 401
POST /v1/referrals/{referral_id}/accept                   403 403 403 403 404 404 {so} 404 403 403 403 403 403 403 403 401
POST /v1/referrals/{referral_id}/status                   403 403 403 403 404 404 {so} 404 403 403 403 403 403 403 403 401
POST /v1/referrals/{referral_id}/start                    403 403 403 403 404 404 {so} 404 403 403 403 403 403 403 403 401
POST /v1/referrals/{referral_id}/complete                 403 403 403 403 404 404 {so} 404 403 403 403 403 403 403 403 401
POST /v1/referrals/{referral_id}/decline                  403 403 403 403 404 404 {so} 404 403 403 403 403 403 403 403 401
POST /v1/referrals/{referral_id}/send                     ok  404 ok  404 403 403 403 403 403 403 403 403 403 403 403 401
POST /v1/referrals/{referral_id}/resume                   ok  404 ok  404 403 403 403 403 403 403 403 403 403 403 403 401
POST /v1/referrals/{referral_id}/cancel                   ok  404 ok  404 403 403 403 403 403 403 403 403 403 403 403 401
"""  # noqa: E501
#: Sundhed og Omsorg's column per state. A draft addressed to it is the team's working note:
#: absent for it (404), like another department's referral, and so is a draft made after its
#: consent was revoked. A referral it received stays its case record after the revocation (it
#: reads it, now on hold, and its moves are answered 409: past authorisation, refused by the rule).
REFERRAL_STATES = {"draft": "404", "held_after_revocation": "ok", "drafted_after_revocation": "404",
                   "draft_cancelled_by_revocation": "404"}

FINANCE = HEADER + OPERATIONS + """
# Finance publishes no family events (its events are per site and year), so its family view has
# nothing to show anyone: an allowed role is told there is no such family.
GET  /v1/families/{family_id}/slice                       404 404 404 404 404 404 404 404 403 404 403 404 403 403 403 401
GET  /v1/budgets                                          403 403 403 403 403 403 403 403 ok  ok  403 403 403 403 403 401
GET  /v1/allocations                                      403 403 403 403 403 403 403 403 ok  ok  403 403 403 403 403 401
# A department reads its own statement only (the fixture asks for Sundhed og Omsorg's).
GET  /v1/statements                                       403 403 403 403 404 404 ok  404 ok  ok  403 403 403 403 403 401
GET  /v1/statements.csv                                   403 403 403 403 404 404 ok  404 ok  ok  403 403 403 403 403 401
GET  /v1/savings                                          403 403 403 403 403 403 403 403 ok  ok  403 403 403 403 403 401
POST /v1/budgets                                          403 403 403 403 403 403 403 403 ok  403 403 403 403 403 403 401
POST /v1/allocations                                      403 403 403 403 403 403 403 403 ok  403 403 403 403 403 403 401
POST /v1/allocations/preview                              403 403 403 403 403 403 403 403 ok  ok  403 403 403 403 403 401
POST /v1/settlements                                      403 403 403 403 403 403 403 403 ok  403 403 403 403 403 403 401
POST /v1/ledger/{entry_id}/correct                        403 403 403 403 403 403 403 403 ok  403 403 403 403 403 403 401
PUT  /v1/families/{family_id}/savings                     403 403 403 403 403 403 403 403 ok  403 403 403 403 403 403 401
GET  /v1/savings/areas                                    403 403 403 403 403 403 403 403 ok  ok  403 403 403 403 403 401
PUT  /v1/families/{family_id}/costs                       403 403 403 403 403 403 403 403 ok  403 403 403 403 403 403 401
POST /v1/costs/imports                                    403 403 403 403 403 403 403 403 ok  403 403 403 403 403 403 401
# External funding: finance records grants; the report's readers (coordination, systems) read them.
POST /v1/grants                                           403 403 403 403 403 403 403 403 ok  403 403 403 403 403 403 401
GET  /v1/grants                                           403 403 403 403 403 403 403 403 ok  ok  ok  403 403 403 403 401
GET  /v1/funding                                          403 403 403 403 403 403 403 403 ok  ok  ok  403 403 403 403 401
"""  # noqa: E501

#: Endpoints left out of the guessed-id check, with the reason.
GUESS_EXEMPT: dict[str, str] = {
    "GET /v1/persons/{person_id}/subject-access": "a person id the service holds nothing about is "
    "answered with an empty part: that the service holds nothing is the answer the report needs",
}

#: Body fields naming another site's object, answered 422 like an unknown id (see ``422`` above).
BODY_ID_PROBES = {"POST /v1/referrals": "family_id"}

TABLES = {"intake": INTAKE, "casework": CASEWORK, "referrals": REFERRALS, "finance": FINANCE}


@pytest.mark.parametrize("service", list(TABLES))
async def test_every_endpoint_answers_every_kind_of_caller_as_the_matrix_says(
        service: str, postgres_url: str) -> None:
    under_test = SERVICES[service]
    # Casework's steering report asks intake and finance: here at addresses where nothing answers.
    peers = {"peer_urls": {name: f"http://127.0.0.1:{free_port()}" for name in TABLES}}
    async with service_api(under_test.create_app, service=service, broker=None,
                           database_url=postgres_url, **peers) as http:
        app = http.app  # type: ignore[attr-defined]
        ids, requests = await under_test.fixture(http, app)
        ids = {**ids, "event_id": await park_an_event(app)}
        run = MatrixRun(http=http, settings=http.settings, table=parse_matrix(TABLES[service]),  # type: ignore[attr-defined]
                        requests=requests, ids=ids)
        run.check_every_route_has_a_row(app)
        await run.check_cells()
        await run.check_guessed_ids(GUESS_EXEMPT)
        await run.check_body_ids({key: name for key, name in BODY_ID_PROBES.items() if key in run.table})
    if run.mismatches:
        pytest.fail(report(service, run.mismatches), pytrace=False)


@pytest.mark.parametrize("state", list(REFERRAL_STATES))
async def test_drafts_and_revoked_consent_answer_every_kind_of_caller_as_the_matrix_says(
        state: str, postgres_url: str) -> None:
    """The referral rows again for a draft and around a revoked consent: the receiving department
    sees nothing the team has not sent it, and nothing new once its consent is gone."""
    async with service_api(SERVICES["referrals"].create_app, service="referrals", broker=None,
                           database_url=postgres_url) as http:
        ids, requests = await referral_state_fixture(http, http.app, state)  # type: ignore[attr-defined]
        table = parse_matrix(REFERRAL_ROWS.replace("{so}", f"{REFERRAL_STATES[state]:<3}"))
        run = MatrixRun(http=http, settings=http.settings, table=table, requests=requests, ids=ids)  # type: ignore[attr-defined]
        await run.check_cells()
    if run.mismatches:
        pytest.fail(report(f"referrals ({state})", run.mismatches), pytrace=False)
