"""Alembic revisions of this service (loaded by path; a package so they ship in the wheel)."""
