"""The verified-token cache: a token is verified once and then remembered, but never past its
``exp``, never for another token, and never beyond its bound."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from shared.auth import Role, TokenVerifier, mint_token
from shared.errors import Unauthorized
from tests.support import make_settings


class Clock:
    """A clock the test moves by hand (no sleeping, no timed assertions)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


async def test_a_remembered_token_is_refused_once_its_exp_has_passed() -> None:
    settings, clock = make_settings(), Clock()
    verifier = TokenVerifier(settings, clock=clock)
    token = mint_token(settings, subject="s1", role=Role.TEAM_STAFF, site="gellerup",
                       ttl=timedelta(minutes=5))
    assert (await verifier.verify(token)).subject == "s1"
    assert (await verifier.verify(token)).subject == "s1"  # now from the cache
    clock.now += 5 * 60 + 1
    with pytest.raises(Unauthorized, match="expired"):
        await verifier.verify(token)


async def test_the_cache_is_bounded_and_keyed_by_the_raw_token() -> None:
    settings = make_settings()
    verifier = TokenVerifier(settings, cache_size=3)
    tokens = [mint_token(settings, subject=f"s{i}", role=Role.SYSTEM) for i in range(5)]
    for i, token in enumerate(tokens):
        assert (await verifier.verify(token)).subject == f"s{i}"
    assert len(verifier._verified) == 3  # the least recently used were dropped
    assert (await verifier.verify(tokens[0])).subject == "s0"  # verified afresh
    tampered = tokens[1][:-2] + ("AA" if not tokens[1].endswith("AA") else "BB")
    with pytest.raises(Unauthorized):
        await verifier.verify(tampered)
    assert tampered not in verifier._verified  # a refused token is not remembered
