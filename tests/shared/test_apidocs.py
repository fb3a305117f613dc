"""The committed API reference in docs/api is what the code serves."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from services.casework.app import create_app
from shared.apidocs import openapi_documents
from shared.settings import Settings

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


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_api_docs_pages_load_their_assets_from_the_service_not_a_cdn(page: str) -> None:
    """An offline machine (no CDN) must still see Swagger UI and ReDoc: every asset is local."""
    app = create_app(Settings(service="casework"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as http:
        html = (await http.get(page)).text
        references = re.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""", html)
        assert "http://" not in html and "https://" not in html and "//" not in "".join(references)
        assert any(ref.endswith(".js") for ref in references), references
        assert "/openapi.json" in references
        for reference in references:
            assert reference.startswith("/"), reference
            answer = await http.get(reference)
            assert answer.status_code == 200, reference
            assert answer.content, reference
