"""Casework without a broker: the app on SQLite and on PostgreSQL (helpers in ``support.py``)."""

from __future__ import annotations

import pytest

from services.casework.app import create_app
from tests.support import bearer, service_api


@pytest.fixture
async def cw(database_url: str):
    """The casework app with ``.team``/``.leader`` tokens for Gellerup; no broker (events stay in
    the outbox, where the tests read them)."""
    async with service_api(create_app, service="casework", broker=None, database_url=database_url) as http:
        http.leader = bearer(http.settings, "team_leader", site="gellerup")  # type: ignore[attr-defined]
        yield http
