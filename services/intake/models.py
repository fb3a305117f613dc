"""Tables and API schemas of the intake service, in a metadata of its own (its own database)."""

from __future__ import annotations

from sqlalchemy.orm import registry
from sqlmodel import SQLModel


class IntakeTable(SQLModel, registry=registry()):
    """Base of every intake table: keeps its metadata apart from the other services'."""


metadata = IntakeTable.metadata
