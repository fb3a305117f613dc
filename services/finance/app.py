"""Wiring of the finance service: routes and its subscriptions to casework and intake."""

from __future__ import annotations

from fastapi import FastAPI

from services.finance import funding_api
from services.finance.api import router
from services.finance.domain import FinanceConflict
from services.finance.handlers import SUBSCRIPTION
from services.finance.models import AdultStatus, metadata
from shared.app import ServiceDefinition, build_app
from shared.audit import members_from
from shared.audit_api import PersonalTables
from shared.settings import Settings

DEFINITION = ServiceDefinition(
    name="finance",
    title="Opgang til Opgang — Finance",
    description=(
        "Site budgets, co-financing allocation by stationed FTE-days (exact to the øre), settlements "
        "in an append-only ledger, external funding (grants), savings and break-even."
    ),
    routers=[router, funding_api.router],
    subscriptions=[SUBSCRIPTION],
    domain_errors={FinanceConflict: 409},
    members=members_from(AdultStatus.__table__, family="family_id", person="person_id"),  # type: ignore[attr-defined]
    personal=PersonalTables(metadata),
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_app(DEFINITION, settings or Settings(service="finance"))
