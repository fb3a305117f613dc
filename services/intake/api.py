"""HTTP routes of the intake service: parse, call a use case, map errors. No SQL, no rules."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/v1")
