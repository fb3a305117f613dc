"""Wiring of the intake service: routes, seed and the CPR vault via ``shared.app``."""

from __future__ import annotations

from fastapi import FastAPI

from services.intake import areas_api, service, tips_api
from services.intake.api import router
from services.intake.cpr import CprVault, InvalidCpr
from services.intake.domain import IntakeConflict
from services.intake.handlers import SUBSCRIPTION
from services.intake.models import Person, metadata
from shared.app import ServiceDefinition, build_app
from shared.audit import members_from
from shared.audit_api import PersonalTables
from shared.settings import Settings

DEFINITION = ServiceDefinition(
    name="intake",
    title="Opgang til Opgang — Intake",
    description=(
        "Households, persons (CPR encrypted), target areas, eligibility screening, outreach, consent, "
        "enrolment, waitlist, partners' tips and the cohort profile: the family's one entry point. "
        "CPR numbers go in "
        "POST bodies only."
    ),
    routers=[router, areas_api.router, tips_api.router],
    domain_errors={IntakeConflict: 409, InvalidCpr: 422},
    seed=service.seed_sites,
    members=members_from(Person.__table__, family="household_id", person="id"),  # type: ignore[attr-defined]
    personal=PersonalTables(metadata, ids={"persons": "person", "households": "family"}),
    subscriptions=[SUBSCRIPTION],
    body_limits=lambda settings: {"/v1/imports": settings.max_import_bytes},
)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings(service="intake")
    app = build_app(DEFINITION, settings)
    app.state.vault = CprVault.from_settings(settings.cpr_keys.get_secret_value(),
                                             settings.cpr_hash_key.get_secret_value())
    return app
