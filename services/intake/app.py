"""Wiring of the intake service: routes, subscriptions and lifespan via ``shared.app``."""

from __future__ import annotations

from fastapi import FastAPI

from services.intake.api import router
from shared.app import ServiceDefinition, build_app
from shared.settings import Settings

DEFINITION = ServiceDefinition(
    name="intake",
    title="Opgang til Opgang — Intake",
    description=(
        "Households, persons (CPR encrypted), eligibility screening, outreach, consent, enrolment "
        "and waitlist: the family's one entry point."
    ),
    routers=[router],
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_app(DEFINITION, settings or Settings(service="intake"))
