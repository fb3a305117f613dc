"""Tables and API schemas of the casework service, in a metadata of its own (its own database)."""

from __future__ import annotations

from sqlalchemy.orm import registry
from sqlmodel import SQLModel


class CaseworkTable(SQLModel, registry=registry()):
    """Base of every casework table: keeps its metadata apart from the other services'."""


metadata = CaseworkTable.metadata
