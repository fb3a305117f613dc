"""Wiring of the referrals service: routes, the catalogue seed and its subscriptions."""

from __future__ import annotations

from fastapi import FastAPI

from services.referrals import service
from services.referrals.api import router
from services.referrals.domain import NotAllowed, ReferralsConflict
from services.referrals.handlers import SUBSCRIPTION
from services.referrals.models import FamilyMember, metadata
from shared.app import ServiceDefinition, build_app
from shared.audit import members_from
from shared.audit_api import PersonalTables
from shared.settings import Settings

DEFINITION = ServiceDefinition(
    name="referrals",
    title="Opgang til Opgang — Referrals",
    description=(
        "The catalogue of department offers, cross-department referrals and each department's inbox. "
        "Consent comes from intake's events; escalations to a faglig ven from casework's."
    ),
    routers=[router],
    subscriptions=[SUBSCRIPTION],
    domain_errors={ReferralsConflict: 409, NotAllowed: 403},
    seed=service.seed_offers,
    members=members_from(FamilyMember.__table__, family="family_id", person="person_id"),  # type: ignore[attr-defined]
    personal=PersonalTables(metadata),
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_app(DEFINITION, settings or Settings(service="referrals"))
