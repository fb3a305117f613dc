"""Who may look: department staff of this dashboard's department, with the services' own JWTs.

The browser keeps the token in an HttpOnly, SameSite=Strict cookie set by the login form (a POST,
so the token is in no URL and no access log); other clients may send ``Authorization: Bearer``.
In development (the local HS256 key, no JWKS) the login page can mint a token itself.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
from fastapi import Request
from fastapi.responses import Response

from shared.auth import Principal, Role, mint_token
from shared.departments import Department
from shared.errors import Forbidden, Unauthorized
from shared.settings import DEV_JWT_SECRET, Settings

COOKIE = "oto_dashboard_token"


class LoginRequired(Exception):
    """No usable token: a browser is sent to the login page."""


def dev_login_allowed(settings: Settings) -> bool:
    """Only with the development key, which is public anyway: never with a JWKS or a real secret."""
    return settings.jwks_url is None and settings.jwt_secret.get_secret_value() == DEV_JWT_SECRET


def dev_token(settings: Settings, department: Department) -> str:
    return mint_token(settings, subject="dev-dashboard-user", role=Role.DEPARTMENT_STAFF,
                      department=department.value, ttl=timedelta(hours=8))


def token_of(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.cookies.get(COOKIE) or None


async def principal_of(request: Request) -> Principal:
    """The caller, if staff of this department; LoginRequired or Forbidden otherwise."""
    token = token_of(request)
    if token is None:
        raise LoginRequired()
    try:
        principal: Principal = await request.app.state.token_verifier.verify(token)
    except Unauthorized:
        raise LoginRequired() from None
    check(principal, request.app.state.department)
    return principal


def check(principal: Principal, department: Department) -> None:
    if principal.role is not Role.DEPARTMENT_STAFF or principal.department is not department:
        raise Forbidden(f"Only staff of {department.value} may see this dashboard.")


def set_cookie(response: Response, request: Request, token: str) -> None:
    """The token's own expiry bounds the cookie's life."""
    expires = jwt.decode(token, options={"verify_signature": False}).get("exp")
    max_age = int(expires - datetime.now(UTC).timestamp()) if isinstance(expires, int | float) else 3600
    response.set_cookie(COOKIE, token, max_age=max(max_age, 0), httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/")
