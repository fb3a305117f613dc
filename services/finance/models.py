"""Tables and API schemas of the finance service, in a metadata of its own (its own database)."""

from __future__ import annotations

from sqlalchemy.orm import registry
from sqlmodel import SQLModel


class FinanceTable(SQLModel, registry=registry()):
    """Base of every finance table: keeps its metadata apart from the other services'."""


metadata = FinanceTable.metadata
