"""``Idempotency-Key`` on POSTs: a replay returns the first response, stored atomically with it.

Use cases write and flush; the entrypoint commits. ``Idempotency.run`` is that commit for HTTP:
the response is saved in the same transaction as the state change and its events.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shared.audit import SubjectKind, audit_answer
from shared.auth import CurrentPrincipal, Principal
from shared.db import SessionDep
from shared.errors import Conflict
from shared.tables import idempotency_keys

REPLAY_HEADER = "Idempotent-Replayed"


class Idempotency:
    def __init__(self, session: AsyncSession, principal: Principal, key: str | None,
                 fingerprint: str, request: Request) -> None:
        self.session = session
        self.request = request
        self.principal = principal
        self.key = key
        self.fingerprint = fingerprint

    async def run(self, action: Callable[[], Awaitable[Any]], *, status_code: int = 201,
                  subject: SubjectKind | None = None) -> JSONResponse:
        """Replay a stored response, or run ``action``, store its response and commit.

        Either way the answer's audit entry (the persons, families and referrals it names, see
        ``shared.audit.audit_answer``) commits with it; ``subject`` is the kind of the answer's
        own ``id`` when it is one (a new household is a family)."""
        if self.key is not None:
            stored = await self._stored()
            if stored is not None:
                await audit_answer(self.session, self.principal, self.request, json.loads(bytes(stored.body)),
                                   top_level=subject)
                await self.session.commit()
                return stored
        body = jsonable_encoder(await action())
        await audit_answer(self.session, self.principal, self.request, body, top_level=subject)
        if self.key is not None:
            await self.session.execute(idempotency_keys.insert().values(
                principal=self.principal.subject, key=self.key, fingerprint=self.fingerprint,
                status_code=status_code, response_body=json.dumps(body),
                created_at=datetime.now(UTC)))
        try:
            await self.session.commit()
        except IntegrityError:
            await self.session.rollback()
            stored = await self._stored() if self.key is not None else None
            if stored is None:
                raise
            return stored
        return JSONResponse(body, status_code=status_code)

    async def _stored(self) -> JSONResponse | None:
        row = (await self.session.execute(select(idempotency_keys).where(
            idempotency_keys.c.principal == self.principal.subject,
            idempotency_keys.c.key == self.key))).first()
        if row is None:
            return None
        if row.fingerprint != self.fingerprint:
            raise Conflict("This Idempotency-Key was used before with a different request.")
        return JSONResponse(json.loads(row.response_body), status_code=row.status_code,
                            headers={REPLAY_HEADER: "true"})


async def get_idempotency(
    request: Request, session: SessionDep, principal: CurrentPrincipal,
    idempotency_key: Annotated[str | None, Header(max_length=200, min_length=1)] = None,
) -> Idempotency:
    digest = hashlib.sha256()
    digest.update(f"{request.method} {request.url.path}?{request.url.query}\n".encode())
    digest.update(await request.body())
    return Idempotency(session, principal, idempotency_key, digest.hexdigest(), request)


IdempotencyDep = Annotated[Idempotency, Depends(get_idempotency)]
