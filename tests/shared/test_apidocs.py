"""The committed API reference in docs/api is what the code serves."""

from __future__ import annotations

import json
from pathlib import Path

from shared.apidocs import openapi_documents

ROOT = Path(__file__).resolve().parents[2]


def test_committed_openapi_documents_match_the_code() -> None:
    for service, document in openapi_documents().items():
        committed = json.loads((ROOT / "docs/api" / f"{service}.openapi.json").read_text())
        assert committed == json.loads(json.dumps(document)), \
            f"docs/api is stale: run `oto openapi` ({service})"

