"""The per-department REST view of a family, served by every service for the data it owns.

Design: a service's outbox keeps every event it published, so the view projects those rows
through the same slice policy as the relay. A department therefore sees over REST exactly the
fields its topic carries, by construction. A department with no event about the family gets
404 (no existence leak); team staff of the family's site get the full events.

On PostgreSQL the read is two autocommit statements on the driver (``shared.db.fetch_autocommit``)
instead of the session's BEGIN, SELECT, (member lookup,) INSERT, COMMIT: the events, then the
audit entry, which names the family's members itself (``shared.audit.record_family_access``).
The entry is committed before the answer leaves, and a failed entry fails the read (503), as
before. Under PostgreSQL's READ COMMITTED a read-only SELECT followed by the INSERT in one
transaction sees and commits exactly what the two statements do on their own: the transaction
added no guarantee, only two round trips. SQLite (the embedded default) keeps the session.
"""

from __future__ import annotations

from datetime import UTC
from types import SimpleNamespace
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel
from sqlalchemy import bindparam, select

from shared.audit import record_access, record_family_access
from shared.auth import CurrentPrincipal, Principal, Role, roles_checked_in_route
from shared.db import Statement, fetch_autocommit, is_postgres, open_session
from shared.errors import Forbidden, NotFound
from shared.events.envelope import Envelope
from shared.openapi import model_response
from shared.outbox import row_to_envelope
from shared.slices import SlicePolicy
from shared.tables import outbox

MAX_EVENTS = 1000
PURPOSE = "department view"
#: Who sees a family's full events (their own site's, for team roles), and who has a view at all.
FULL_VIEW_ROLES = frozenset({Role.TEAM_STAFF, Role.TEAM_LEADER, Role.COORDINATION, Role.ADMIN})
FAMILY_VIEW_ROLES = FULL_VIEW_ROLES | {Role.DEPARTMENT_STAFF}


class SliceEvent(BaseModel):
    id: str
    type: str
    time: str
    data: dict[str, Any]


class FamilySlice(BaseModel):
    family_id: UUID
    department: str | None
    events: list[SliceEvent]


def slice_router() -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["department view"])

    @router.get("/families/{family_id}/slice", response_model=FamilySlice,
                dependencies=[Depends(roles_checked_in_route(FAMILY_VIEW_ROLES))],
                summary="A family as the caller may see it: a department's slice, or the team's full view")
    async def family_slice(family_id: UUID, request: Request, principal: CurrentPrincipal) -> Response:
        state, endpoint = request.app.state, f"{request.method} {request.url.path}"
        if is_postgres(state.engine):
            # Two autocommit statements, no session: the events, then the entry (the outcome
            # needs the slice policy, which is Python). See the module's docstring.
            rows = await fetch_autocommit(state.engine, _FAMILY_EVENTS_SQL, str(family_id))
            visible = _visible([row_to_envelope(SimpleNamespace(**row)) for row in rows], principal,
                               state.policy)
            await record_family_access(state.engine, principal, family=family_id, endpoint=endpoint,
                                       purpose=PURPOSE, allowed=bool(visible), members=state.members)
        else:
            async with open_session(request) as session:
                visible = _visible(await _family_events(session, family_id), principal, state.policy)
                await record_access(session, principal, families=[family_id], endpoint=endpoint,
                                    purpose=PURPOSE, allowed=bool(visible))
        if visible is None:
            raise Forbidden("This role has no family view.")
        if not visible:
            raise NotFound("No such family.")
        department = principal.department.value if principal.department else None
        return model_response(FamilySlice(family_id=family_id, department=department, events=[
            SliceEvent(id=e.id, type=e.type, time=e.time.astimezone(UTC).isoformat(), data=e.data)
            for e in visible]))

    return router


#: Built once (a statement built per request costs SQLAlchemy its cache key each time).
_FAMILY_EVENTS = select(outbox).where(
    outbox.c.partition_key == bindparam("family"), outbox.c.parked_at.is_(None),
    outbox.c.discarded_at.is_(None)).order_by(outbox.c.id).limit(MAX_EVENTS)
#: The same on the driver (PostgreSQL).
_FAMILY_EVENTS_SQL = Statement(
    "SELECT * FROM outbox WHERE partition_key = $1 AND parked_at IS NULL AND discarded_at IS NULL "
    f"ORDER BY id LIMIT {MAX_EVENTS}")


async def _family_events(session: Any, family_id: UUID) -> list[Envelope]:
    rows = await session.execute(_FAMILY_EVENTS, {"family": str(family_id)})
    return [row_to_envelope(row) for row in rows]


def _visible(envelopes: list[Envelope], principal: Principal,
             policy: SlicePolicy) -> list[Envelope] | None:
    """The events the caller may see; None when the role has no family view at all."""
    if principal.role is Role.DEPARTMENT_STAFF and principal.department is not None:
        return [projected for env in envelopes for dept, projected in policy.project(env)
                if dept is principal.department]
    if principal.role in FULL_VIEW_ROLES:
        return [env for env in envelopes if principal.can_see_site(str(env.data.get("site_id")))]
    return None
