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



def test_every_error_an_operation_can_answer_is_documented_as_a_problem() -> None:
    """FastAPI's own 422 shape is gone; errors are problem+json, 401 exactly where a token is read."""
    for service, document in openapi_documents().items():
        assert "HTTPValidationError" not in json.dumps(document), service
        shared = document["components"]["responses"]
        for path, item in document["paths"].items():
            for method, operation in item.items():
                where = f"{service}: {method.upper()} {path}"
                errors = {code: r for code, r in operation["responses"].items() if int(code) >= 400}
                assert "503" in errors, where
                for reference in errors.values():
                    response = shared[reference["$ref"].rsplit("/", 1)[-1]]
                    assert list(response["content"]) == ["application/problem+json"], where
                assert ("401" in errors) == ("security" in operation) == path.startswith(
                    ("/v1/", "/audit")), where
