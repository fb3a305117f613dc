"""Wiring of the finance service: routes, subscriptions and lifespan via ``shared.app``."""

from __future__ import annotations

from fastapi import FastAPI

from services.finance.api import router
from shared.app import ServiceDefinition, build_app
from shared.settings import Settings

DEFINITION = ServiceDefinition(
    name="finance",
    title="Opgang til Opgang — Finance",
    description=(
        "Site budgets, co-financing allocation by stationed FTE, settlements, savings and "
        "break-even."
    ),
    routers=[router],
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_app(DEFINITION, settings or Settings(service="finance"))
