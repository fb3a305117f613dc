"""Referral rules without I/O."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from services.referrals import domain as d
from shared.departments import Department

S, A = d.State, d.Actor


def test_the_full_lifecycle_is_legal_for_the_right_sides() -> None:
    state = d.transition(S.DRAFT, S.SENT, actor=A.TEAM)
    for target in (S.ACCEPTED, S.IN_PROGRESS, S.COMPLETED):
        state = d.transition(state, target, actor=A.DEPARTMENT)
    assert state is S.COMPLETED


@pytest.mark.parametrize(("current", "target"), [(S.DECLINED, S.COMPLETED), (S.ACCEPTED, S.ACCEPTED),
                                                 (S.COMPLETED, S.IN_PROGRESS), (S.DRAFT, S.ACCEPTED)])
def test_illegal_transitions_conflict(current: d.State, target: d.State) -> None:
    with pytest.raises(d.ReferralsConflict):
        d.transition(current, target, actor=A.DEPARTMENT)


def test_the_team_cannot_accept_and_a_department_cannot_send() -> None:
    with pytest.raises(d.NotAllowed):
        d.transition(S.SENT, S.ACCEPTED, actor=A.TEAM)
    with pytest.raises(d.NotAllowed):
        d.transition(S.DRAFT, S.SENT, actor=A.DEPARTMENT)


def test_declining_needs_a_reason() -> None:
    with pytest.raises(d.ReferralsConflict, match="reason"):
        d.transition(S.SENT, S.DECLINED, actor=A.DEPARTMENT)


def test_due_dates_and_overdue() -> None:
    sent = datetime(2026, 3, 2, tzinfo=UTC)
    assert d.due_at(sent, timedelta(days=14), "routine") == sent + timedelta(days=14)
    assert d.due_at(sent, timedelta(days=14), "urgent") == sent + timedelta(days=7)
    later = sent + timedelta(days=15)
    assert d.is_overdue(S.ACCEPTED, sent + timedelta(days=14), later)
    assert not d.is_overdue(S.COMPLETED, sent + timedelta(days=14), later)


def test_the_consent_gate_names_the_missing_department() -> None:
    with pytest.raises(d.ReferralsConflict, match=r"Sundhed og Omsorg \(sundhed-og-omsorg\)"):
        d.require_consent({Department.SOCIAL_AND_EMPLOYMENT}, Department.HEALTH_AND_CARE)


def test_revoked_consent_cancels_drafts_and_holds_open_referrals() -> None:
    assert d.state_after_consent_revoked(S.DRAFT) is S.CANCELLED
    assert d.state_after_consent_revoked(S.IN_PROGRESS) is S.ON_HOLD
    assert d.state_after_consent_revoked(S.COMPLETED) is None


def test_every_seed_offer_is_sound_and_each_department_has_some() -> None:
    assert {o.department for o in d.SEED_OFFERS} == set(Department)
    for offer in d.SEED_OFFERS:
        assert offer.required_fields and set(offer.required_fields) <= d.KNOWN_FIELDS and offer.sla_days > 0


P = "5d0c3e1a-77b2-4c8e-a1f4-2e9b6d3c8a01"


def test_fields_must_be_exactly_what_the_offer_needs() -> None:
    need = ("person_id", "health_concern_code")
    assert d.validate_fields(need, {"person_id": P, "health_concern_code": "back"}) == {
        "person_id": P, "health_concern_code": "back"}
    with pytest.raises(d.FieldProblem) as missing:
        d.validate_fields(need, {"person_id": P})
    assert missing.value.fields == ["health_concern_code"]
    with pytest.raises(d.FieldProblem) as extra:
        d.validate_fields(need, {"person_id": P, "health_concern_code": "b", "diagnosis": "x"})
    assert extra.value.fields == ["diagnosis"]


@pytest.mark.parametrize(("name", "good", "bad"), [
    ("person_id", P, "Fatima Hassan"),
    ("birth_year", "2015", "0101901234"),
    ("birth_year", "1985", "2099"),
    ("household_size", "5", "010190-1234"),
    ("household_size", "1", "31"),
    ("child_school", "gellerup-skole", "Gellerup Skole, 4. b"),
    ("debt_overview", "over_limit2", "skylder 80000"),
])
def test_each_field_is_of_its_kind_and_never_free_text(name: str, good: str, bad: str) -> None:
    today = date(2026, 11, 29)
    assert d.validate_fields((name,), {name: good}, today=today) == {name: good}
    with pytest.raises(d.FieldProblem) as refused:
        d.validate_fields((name,), {name: bad}, today=today)
    assert refused.value.fields == [name] and bad not in str(refused.value)


def test_a_hold_is_left_only_by_cancelling_or_by_the_team_resuming_with_consent() -> None:
    health = Department.HEALTH_AND_CARE
    with pytest.raises(d.ReferralsConflict, match="resumes"):
        d.transition(S.ON_HOLD, S.ACCEPTED, actor=A.DEPARTMENT)
    with pytest.raises(d.ReferralsConflict):
        d.transition(S.ON_HOLD, S.SENT, actor=A.TEAM)
    assert d.transition(S.ON_HOLD, S.CANCELLED, actor=A.TEAM, reason_code="x") is S.CANCELLED
    with pytest.raises(d.NotAllowed):
        d.resume(S.ON_HOLD, S.ACCEPTED, actor=A.DEPARTMENT, covered={health}, target_department=health)
    with pytest.raises(d.ReferralsConflict, match=r"sundhed-og-omsorg"):
        d.resume(S.ON_HOLD, S.ACCEPTED, actor=A.TEAM, covered=set(), target_department=health)
    with pytest.raises(d.ReferralsConflict, match="on hold"):
        d.resume(S.SENT, None, actor=A.TEAM, covered={health}, target_department=health)
    assert d.resume(S.ON_HOLD, S.IN_PROGRESS, actor=A.TEAM, covered={health},
                    target_department=health) is S.IN_PROGRESS


def test_an_exited_family_gets_everything_open_cancelled_and_nothing_new() -> None:
    assert {s: d.state_after_family_exited(s) for s in S} == {
        S.DRAFT: S.CANCELLED, S.SENT: S.CANCELLED, S.ACCEPTED: S.CANCELLED, S.IN_PROGRESS: S.CANCELLED,
        S.ON_HOLD: S.CANCELLED, S.COMPLETED: None, S.DECLINED: None, S.CANCELLED: None}
    with pytest.raises(d.ReferralsConflict, match="left the programme"):
        d.require_family_in_programme(True)
