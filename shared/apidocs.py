"""Writes each service's OpenAPI document to docs/api/, so the API reference is generated."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

from shared.settings import SERVICES, Settings


def openapi_documents() -> dict[str, dict[str, Any]]:
    documents: dict[str, dict[str, Any]] = {}
    for service in SERVICES:
        module = importlib.import_module(f"services.{service}.app")
        documents[service] = module.create_app(Settings(service=service)).openapi()
    return documents


def write_openapi(docs_dir: Path) -> list[Path]:
    target = docs_dir / "api"
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for service, document in openapi_documents().items():
        path = target / f"{service}.openapi.json"
        path.write_text(json.dumps(document, indent=2, ensure_ascii=False, sort_keys=True) + "\n")
        written.append(path)
    return written
