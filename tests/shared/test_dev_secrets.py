"""A service outside development refuses to start with the development secrets.

The JWT signing key and the CPR keys have development defaults so ``./run.sh`` and the tests need
no set-up; a production container that forgot to set them would accept forged tokens and encrypt
CPR numbers with a key printed in the source. So only ``OTO_ENV=dev`` may run with them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from services.casework.app import create_app
from shared.settings import DEV_JWT_SECRET, DevelopmentSecrets, Settings
from tests.support import make_settings

ROOT = Path(__file__).resolve().parents[2]
REAL = {"jwt_secret": "a-real-signing-key-from-the-secret-store-0123456789",
        "cpr_keys": "k1:cmVhbC1jcHIta2V5LTMyLWJ5dGVzLWxvbmctLS0tLS0=", "cpr_hash_key": "a-real-hash-key"}


def test_the_container_entry_point_refuses_the_development_secrets_in_one_line() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTO_")}
    env |= {"OTO_SERVICE": "intake", "OTO_PORT": "1"}
    done = subprocess.run([sys.executable, "-m", "shared.serve"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode != 0
    message = done.stderr.strip()
    assert message.count("\n") == 0 and "Traceback" not in message, message
    assert "OTO_JWT_SECRET" in message and "OTO_CPR_KEYS" in message and "OTO_ENV=dev" in message
    assert DEV_JWT_SECRET not in message


def test_dev_runs_with_the_development_secrets_and_production_needs_real_ones() -> None:
    Settings(env="dev").refuse_development_secrets()
    Settings(env="production", **REAL).refuse_development_secrets()
    with pytest.raises(DevelopmentSecrets, match="OTO_JWT_SECRET"):
        Settings(env="production", **{**REAL, "jwt_secret": DEV_JWT_SECRET}).refuse_development_secrets()
    with pytest.raises(DevelopmentSecrets, match="OTO_CPR_HASH_KEY"):  # a template's placeholder
        Settings(**{**REAL, "cpr_hash_key": "CHANGE-ME-cpr-hash-key"}).refuse_development_secrets()
    # With a JWKS the HS256 key is never used; only intake holds CPR keys.
    Settings(service="intake", jwks_url="https://idp.example/jwks",
             **{**REAL, "jwt_secret": DEV_JWT_SECRET}).refuse_development_secrets()
    Settings(service="finance", jwt_secret=REAL["jwt_secret"]).refuse_development_secrets()


async def test_an_app_outside_dev_with_the_development_key_does_not_start(sqlite_url: str) -> None:
    app = create_app(make_settings(database_url=sqlite_url, service="casework", env="production"))
    with pytest.raises(DevelopmentSecrets):
        async with app.router.lifespan_context(app):
            pass


def test_a_database_password_with_url_characters_is_passed_safely() -> None:
    password = "p/a&s:s@w?o#r%d "
    settings = Settings(database_url="postgresql+asyncpg://intake@postgres:5432/intake",
                        database_password=password)
    url = make_url(settings.resolved_database_url())
    assert (url.password, url.username, url.host, url.database) == (password, "intake", "postgres", "intake")
