"""Wiring of the referrals service: routes, subscriptions and lifespan via ``shared.app``."""

from __future__ import annotations

from fastapi import FastAPI

from services.referrals.api import router
from shared.app import ServiceDefinition, build_app
from shared.settings import Settings

DEFINITION = ServiceDefinition(
    name="referrals",
    title="Opgang til Opgang — Referrals",
    description=(
        "The catalogue of department offers, cross-department referrals and each department's "
        "inbox."
    ),
    routers=[router],
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_app(DEFINITION, settings or Settings(service="referrals"))
