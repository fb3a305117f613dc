"""Production tokens: RS256 verified against the identity provider's JWKS, served over real HTTP."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from shared.auth import Role, TokenVerifier
from shared.errors import Unauthorized
from tests.support import make_settings

KID = "oidc-key-1"


def _private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def provider_key() -> rsa.RSAPrivateKey:
    return _private_key()


@pytest.fixture(scope="module")
def jwks_url(provider_key: rsa.RSAPrivateKey) -> Iterator[str]:
    """A JWKS endpoint on loopback, as Keycloak would serve it."""
    jwk = json.loads(RSAAlgorithm.to_jwk(provider_key.public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": KID, "use": "sig", "alg": "RS256"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/realms/oto/protocol/openid-connect/certs"
    finally:
        server.shutdown()


def _claims(settings: Any, **overrides: Any) -> dict[str, Any]:
    claims = {"sub": "caseworker-7", "role": "team_staff", "site": "gellerup", "azp": "case-system",
              "iss": settings.jwt_issuer, "aud": settings.jwt_audience,
              "exp": datetime.now(UTC) + timedelta(minutes=5)}
    return {**claims, **overrides}


async def test_an_rs256_token_from_the_providers_key_is_accepted(jwks_url: str, provider_key) -> None:
    settings = make_settings(jwks_url=jwks_url)
    token = jwt.encode(_claims(settings), provider_key, algorithm="RS256", headers={"kid": KID})
    principal = await TokenVerifier(settings).verify(token)
    assert (principal.subject, principal.role, principal.site, principal.client) == (
        "caseworker-7", Role.TEAM_STAFF, "gellerup", "case-system")


async def test_unknown_keys_other_algorithms_and_wrong_issuers_are_refused(
        jwks_url: str, provider_key) -> None:
    settings = make_settings(jwks_url=jwks_url)
    verifier = TokenVerifier(settings)
    refused = {
        "signed by another key with the provider's kid":
            jwt.encode(_claims(settings), _private_key(), algorithm="RS256", headers={"kid": KID}),
        "a kid the provider does not have":
            jwt.encode(_claims(settings), provider_key, algorithm="RS256", headers={"kid": "other"}),
        "the development HS256 key":
            jwt.encode(_claims(settings), settings.jwt_secret.get_secret_value(), algorithm="HS256",
                       headers={"kid": KID}),
        "another issuer":
            jwt.encode(_claims(settings, iss="https://evil.example"), provider_key, algorithm="RS256",
                       headers={"kid": KID}),
        "expired":
            jwt.encode(_claims(settings, exp=datetime.now(UTC) - timedelta(seconds=5)), provider_key,
                       algorithm="RS256", headers={"kid": KID}),
    }
    for case, token in refused.items():
        with pytest.raises(Unauthorized):
            await verifier.verify(token)
            pytest.fail(f"accepted a token {case}")
