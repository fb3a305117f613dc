"""Wiring of the casework service: routes and its subscription to intake's events."""

from __future__ import annotations

from fastapi import FastAPI

from services.casework.api import router
from services.casework.domain import CaseworkConflict
from services.casework.handlers import SUBSCRIPTION
from shared.app import ServiceDefinition, build_app
from shared.settings import Settings

DEFINITION = ServiceDefinition(
    name="casework",
    title="Opgang til Opgang — Casework",
    description=(
        "Teams, staff stationing, makkerpar, the family plan, escalation and outcomes. Families "
        "arrive from intake's enrolment events."
    ),
    routers=[router],
    subscriptions=[SUBSCRIPTION],
    domain_errors={CaseworkConflict: 409},
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_app(DEFINITION, settings or Settings(service="casework"))
