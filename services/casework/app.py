"""Wiring of the casework service: routes and its subscription to intake's events."""

from __future__ import annotations

from fastapi import FastAPI

from services.casework.api import router
from services.casework.domain import CaseworkConflict
from services.casework.handlers import SUBSCRIPTION
from services.casework.models import FamilyMember, metadata
from services.casework.steering_api import router as steering_router
from shared.app import ServiceDefinition, build_app
from shared.audit import members_from
from shared.audit_api import PersonalTables
from shared.settings import Settings

DEFINITION = ServiceDefinition(
    name="casework",
    title="Opgang til Opgang — Casework",
    description=(
        "Teams, staff stationing, makkerpar, the family plan, escalation and outcomes. Families "
        "arrive from intake's enrolment events."
    ),
    routers=[router, steering_router],
    subscriptions=[SUBSCRIPTION],
    domain_errors={CaseworkConflict: 409},
    members=members_from(FamilyMember.__table__, family="family_id", person="person_id"),  # type: ignore[attr-defined]
    personal=PersonalTables(metadata, ids={"families": "family"}),
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_app(DEFINITION, settings or Settings(service="casework"))
