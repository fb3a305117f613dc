"""``Idempotency-Key`` on POSTs: a replay returns the first response, stored atomically with it.

Use cases write and flush; the entrypoint commits. ``Idempotency.run`` is that commit for HTTP:
the response is saved in the same transaction as the state change and its events.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header, Request, Response
from pydantic import TypeAdapter
from sqlalchemy import Row, bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shared.audit import SubjectKind, audit_answer
from shared.auth import CurrentPrincipal, Principal
from shared.db import SessionDep
from shared.errors import Conflict
from shared.tables import idempotency_keys

REPLAY_HEADER = "Idempotent-Replayed"
T = TypeVar("T")
#: Built once, values bound per request: a statement built per request makes SQLAlchemy compute
#: its compiled-cache key again each time (two statements on every POST).
_STORED = select(idempotency_keys).where(idempotency_keys.c.principal == bindparam("principal"),
                                         idempotency_keys.c.key == bindparam("key"))
_INSERT = idempotency_keys.insert()


class Idempotency:
    def __init__(self, session: AsyncSession, principal: Principal, key: str | None,
                 fingerprint: str, request: Request, response: Response) -> None:
        self.session = session
        self.request = request
        self.response = response
        self.principal = principal
        self.key = key
        self.fingerprint = fingerprint

    async def run(self, model: type[T], action: Callable[[], Awaitable[T]], *,
                  subject: SubjectKind | None = None) -> T:
        """Replay a stored answer, or run ``action``, store its answer and commit.

        ``model`` is the route's ``response_model``: the route returns the answer as that model,
        so FastAPI validates and serialises it like any other route's, and a replay (the stored
        body validated back into the model) serialises to the same bytes, with the stored status
        code and ``Idempotent-Replayed: true``. Either way the answer's audit entry (the persons,
        families and referrals it names, see ``shared.audit.audit_answer``) commits with it;
        ``subject`` is the kind of the answer's own ``id`` when it is one (a new household is a
        family)."""
        shape = _shape(model)
        stored = await self._stored() if self.key is not None else None
        if stored is not None:
            return await self._replay(shape, stored, subject)
        answer = await action()
        body = shape.dump_python(answer, mode="json", by_alias=True)
        await audit_answer(self.session, self.principal, self.request, body, top_level=subject,
                           encoded=True)
        try:
            if self.key is not None:
                await self.session.execute(_INSERT, {
                    "principal": self.principal.subject, "key": self.key, "fingerprint": self.fingerprint,
                    "status_code": self._status_code(), "response_body": json.dumps(body),
                    "created_at": datetime.now(UTC)})
            await self.session.commit()
        except IntegrityError:
            # A concurrent request with the same key committed first (the INSERT itself fails
            # on the unique key, waiting for it if need be): answer as that request did.
            await self.session.rollback()
            stored = await self._stored() if self.key is not None else None
            if stored is None:
                raise
            return await self._replay(shape, stored, subject)
        return answer

    def _status_code(self) -> int:
        """The status of a fresh answer: the route's own (``status_code=`` in its decorator)."""
        return getattr(self.request.scope.get("route"), "status_code", None) or 200

    async def _replay(self, shape: TypeAdapter[T], stored: Row[Any], subject: SubjectKind | None) -> T:
        """The stored answer, audited as the first was (it names the same persons again)."""
        answer = shape.validate_json(stored.response_body)
        await audit_answer(self.session, self.principal, self.request, json.loads(stored.response_body),
                           top_level=subject, encoded=True)
        await self.session.commit()
        self.response.status_code = stored.status_code
        self.response.headers[REPLAY_HEADER] = "true"
        return answer

    async def _stored(self) -> Row[Any] | None:
        row = (await self.session.execute(_STORED, {"principal": self.principal.subject,
                                                    "key": self.key})).first()
        if row is not None and row.fingerprint != self.fingerprint:
            raise Conflict("This Idempotency-Key was used before with a different request.")
        return row


_shapes: dict[object, TypeAdapter[Any]] = {}


def _shape(model: type[T]) -> TypeAdapter[T]:
    """One adapter per answer model (building one costs far more than using it)."""
    shape = _shapes.get(model)
    if shape is None:
        shape = _shapes[model] = TypeAdapter(model)
    return shape


async def get_idempotency(
    request: Request, response: Response, session: SessionDep, principal: CurrentPrincipal,
    idempotency_key: Annotated[str | None, Header(max_length=200, min_length=1)] = None,
) -> Idempotency:
    digest = hashlib.sha256()
    digest.update(f"{request.method} {request.url.path}?{request.url.query}\n".encode())
    digest.update(await request.body())
    return Idempotency(session, principal, idempotency_key, digest.hexdigest(), request, response)


IdempotencyDep = Annotated[Idempotency, Depends(get_idempotency)]
