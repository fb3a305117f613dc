"""Wiring of the intake service: routes, seed and the CPR vault via ``shared.app``."""

from __future__ import annotations

from fastapi import FastAPI

from services.intake import service
from services.intake.api import router
from services.intake.cpr import CprVault, InvalidCpr
from services.intake.domain import IntakeConflict
from shared.app import ServiceDefinition, build_app
from shared.settings import Settings

DEFINITION = ServiceDefinition(
    name="intake",
    title="Opgang til Opgang — Intake",
    description=(
        "Households, persons (CPR encrypted), eligibility screening, outreach, consent, enrolment "
        "and waitlist: the family's one entry point. CPR numbers go in POST bodies only."
    ),
    routers=[router],
    domain_errors={IntakeConflict: 409, InvalidCpr: 422},
    seed=service.seed_sites,
    body_limits=lambda settings: {"/v1/imports": settings.max_import_bytes},
)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings(service="intake")
    app = build_app(DEFINITION, settings)
    app.state.vault = CprVault.from_settings(settings.cpr_keys.get_secret_value(),
                                             settings.cpr_hash_key.get_secret_value())
    return app
