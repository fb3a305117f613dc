"""Wiring of the casework service: routes, subscriptions and lifespan via ``shared.app``."""

from __future__ import annotations

from fastapi import FastAPI

from services.casework.api import router
from shared.app import ServiceDefinition, build_app
from shared.settings import Settings

DEFINITION = ServiceDefinition(
    name="casework",
    title="Opgang til Opgang — Casework",
    description=(
        "Teams, staff stationing, makkerpar, the family plan, contacts, escalation, job matching "
        "and outcomes."
    ),
    routers=[router],
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_app(DEFINITION, settings or Settings(service="casework"))
