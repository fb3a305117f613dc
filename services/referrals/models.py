"""Tables and API schemas of the referrals service, in a metadata of its own (its own database)."""

from __future__ import annotations

from sqlalchemy.orm import registry
from sqlmodel import SQLModel


class ReferralsTable(SQLModel, registry=registry()):
    """Base of every referrals table: keeps its metadata apart from the other services'."""


metadata = ReferralsTable.metadata
