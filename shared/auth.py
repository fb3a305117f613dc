"""OAuth2 bearer JWTs: HS256 with a local key in development, RS256 from a JWKS in production.

Claims: ``sub``, ``role``, ``department`` (department staff and dashboards), ``site`` (team
staff), ``azp`` (the calling system). ``alg=none`` and any algorithm other than the configured
one are refused.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import cached_property
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request

from shared.departments import Department
from shared.errors import Forbidden, Unauthorized
from shared.screening import UNSAFE_TEXT
from shared.settings import Settings


class Role(StrEnum):
    TEAM_STAFF = "team_staff"
    TEAM_LEADER = "team_leader"
    DEPARTMENT_STAFF = "department_staff"
    FINANCE = "finance"
    COORDINATION = "coordination"
    SYSTEM = "system"
    ADMIN = "admin"
    #: Evaluators (e.g. the university evaluating the model) read aggregate outcomes and load a
    #: comparison cohort's figures; never a family's data.
    EVALUATOR = "evaluator"
    #: The data-protection function: the audit log and subject-access reports, nothing else.
    DATA_PROTECTION = "data_protection"
    #: An outside partner (a housing association's caretaker, the housing-social plan's staff, a
    #: civil-society organisation): passes on tips and reads only whether its own were received
    #: and followed up; never anything about a family.
    PARTNER = "partner"


TEAM_ROLES = frozenset({Role.TEAM_STAFF, Role.TEAM_LEADER})
#: Roles that see every site's families (where their role gives them a view at all).
ALL_SITES_ROLES = frozenset({Role.COORDINATION, Role.FINANCE, Role.ADMIN, Role.SYSTEM})


@dataclass(frozen=True)
class Principal:
    """Who is calling: the subject, its role, and the department or site it is bound to."""

    subject: str
    role: Role
    department: Department | None = None
    site: str | None = None
    client: str | None = None

    @property
    def is_team(self) -> bool:
        return self.role in TEAM_ROLES

    def can_see_site(self, site_id: str) -> bool:
        """Team staff see their own site; coordination, finance, admin and systems see all."""
        if self.is_team:
            return self.site == site_id
        return self.role in ALL_SITES_ROLES

    @property
    def site_scope(self) -> tuple[bool, str | None]:
        """``can_see_site`` as a statement's parameters: (every site, else only this one)."""
        if self.is_team:
            return False, self.site
        return self.role in ALL_SITES_ROLES, None


#: How many verified tokens a service remembers (a few hundred staff and systems hold one each).
TOKEN_CACHE_SIZE = 4096


class TokenVerifier:
    """Verifies bearer tokens, remembering each verified token until its ``exp``.

    Verifying costs a signature check and the claims' parsing on every request; a caller sends
    the same token for hours. The cache is keyed by the raw token (a different token, however
    similar, is verified afresh), bounded (least recently used dropped first) and never answers
    for a token past its ``exp``: that one is verified again, which refuses it as expired.
    Refused tokens are not remembered.
    """

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time,
                 cache_size: int = TOKEN_CACHE_SIZE) -> None:
        self.settings = settings
        self._clock = clock
        self._cache_size = cache_size
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    @cached_property
    def _jwks(self) -> jwt.PyJWKClient | None:
        return jwt.PyJWKClient(self.settings.jwks_url) if self.settings.jwks_url else None

    async def verify(self, token: str) -> Principal:
        cached = self._verified.get(token)
        if cached is not None:
            principal, expires = cached
            if self._clock() < expires:
                self._verified.move_to_end(token)
                return principal
            del self._verified[token]
        principal, expires = await self._verify_signed(token)
        self._verified[token] = (principal, expires)
        if len(self._verified) > self._cache_size:
            self._verified.popitem(last=False)
        return principal

    async def _verify_signed(self, token: str) -> tuple[Principal, float]:
        try:
            if self._jwks is not None:
                signing_key = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
                key, algorithms = signing_key.key, ["RS256"]
            else:
                key, algorithms = self.settings.jwt_secret.get_secret_value(), ["HS256"]
            claims = jwt.decode(
                token, key, algorithms=algorithms, audience=self.settings.jwt_audience,
                issuer=self.settings.jwt_issuer,
                options={"require": ["exp", "sub", "iss", "aud"]},
            )
            if self._clock() >= float(claims["exp"]):
                raise jwt.ExpiredSignatureError("Signature has expired")
        except jwt.ExpiredSignatureError:
            raise Unauthorized("The token has expired.") from None
        except (jwt.InvalidTokenError, jwt.PyJWKClientError) as exc:
            raise Unauthorized(f"The token is not valid: {type(exc).__name__}.") from None
        return _principal_from(claims), float(claims["exp"])


#: The longest value each text claim may have: they are written into the audit log's columns.
CLAIM_LENGTHS = {"sub": 200, "role": 50, "department": 100, "site": 100, "azp": 200}


def _text_claim(claims: dict[str, Any], name: str) -> str | None:
    """A claim that must be text if present; an empty one counts as absent.

    The issuer signs what it is configured to put in: a list or an object where a string belongs
    is a broken or hostile token (401), not something to pass on to the database (where it
    turned into a 503), the audit log or a comparison that is silently false.
    """
    value = claims.get(name)
    if value is None or value == "":
        return None
    if (not isinstance(value, str) or len(value) > CLAIM_LENGTHS[name]
            or UNSAFE_TEXT.search(value) or not value.strip()):
        raise Unauthorized(f"The token's {name} claim is not a valid string.")
    return value


def _principal_from(claims: dict[str, Any]) -> Principal:
    subject = _text_claim(claims, "sub")
    if subject is None:
        raise Unauthorized("The token's sub claim is empty.")
    role_name, department_name = _text_claim(claims, "role"), _text_claim(claims, "department")
    site, client = _text_claim(claims, "site"), _text_claim(claims, "azp")
    try:
        role = Role(role_name or "")
        department = Department(department_name) if department_name else None
    except ValueError:
        raise Unauthorized("The token carries an unknown role or department.") from None
    if role is Role.DEPARTMENT_STAFF and department is None:
        raise Unauthorized("A department token must name its department.")
    if role in TEAM_ROLES and not site:
        raise Unauthorized("A team token must name its site.")
    return Principal(subject=subject, role=role, department=department, site=site, client=client)


def mint_token(
    settings: Settings, *, subject: str, role: Role | str, department: str | None = None,
    site: str | None = None, client: str | None = None, ttl: timedelta = timedelta(hours=8),
) -> str:
    """A development token signed with the local HS256 key."""
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": subject, "role": str(Role(role)), "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience, "iat": now, "exp": now + ttl,
    }
    for name, value in (("department", department), ("site", site), ("azp", client)):
        if value:
            claims[name] = value
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm="HS256")


async def get_principal(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("A bearer token is required.")
    verifier: TokenVerifier = request.app.state.token_verifier
    principal = await verifier.verify(token.strip())
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


#: The attribute a role-checking dependency carries, so the OpenAPI document can say who may call
#: an operation from the very check that enforces it (``shared.openapi``).
ROLES_ATTRIBUTE = "oto_roles"
#: What a role's token binds it to, as ``principal_from_claims`` demands: the object-level scope
#: (a partner's is its own tips, by the token's ``sub``).
ROLE_SCOPE: dict[Role, str] = {Role.TEAM_STAFF: "own site", Role.TEAM_LEADER: "own site",
                               Role.DEPARTMENT_STAFF: "own department", Role.PARTNER: "own tips"}


#: The attribute marking a dependency that reads the bearer token itself (``require_roles``).
READS_TOKEN_ATTRIBUTE = "oto_reads_token"


def require_roles(*roles: Role) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """Dependency: the caller must have one of ``roles`` (function-level authorisation).

    It reads the token itself rather than through a ``CurrentPrincipal`` sub-dependency: every
    level of FastAPI's dependency resolution costs CPU on every request of nearly every route."""
    allowed = frozenset(roles)

    async def dependency(request: Request) -> Principal:
        principal = await get_principal(request)
        if principal.role not in allowed:
            raise Forbidden(f"The role {principal.role} may not do this.")
        return principal

    setattr(dependency, ROLES_ATTRIBUTE, allowed)
    setattr(dependency, READS_TOKEN_ATTRIBUTE, True)
    return dependency


def roles_checked_in_route(roles: frozenset[Role]) -> Callable[..., Coroutine[Any, Any, None]]:
    """Dependency that checks nothing: for a route that refuses other roles itself (after auditing
    the refusal), it names the roles the route lets through, for the OpenAPI document."""

    async def dependency() -> None:
        return None

    setattr(dependency, ROLES_ATTRIBUTE, roles)
    return dependency
