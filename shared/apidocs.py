"""The API reference: /docs and /redoc served offline, and each service's OpenAPI document in docs/api.

Swagger UI and ReDoc normally load their scripts from a CDN, which leaves both pages blank on a
machine without internet (as municipal networks often are). Their assets ship in the PyPI package
``fastapi-offline`` (Swagger UI: Apache-2.0, ReDoc: MIT, the package: MIT), so each service serves
them itself under ``STATIC_URL`` and the pages reference nothing outside the service.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from shared.settings import SERVICES, Settings

STATIC_URL = "/static/docs"
ASSETS = Path(fastapi_offline.__file__).parent / "static"
DOCS_URL, REDOC_URL, OAUTH2_REDIRECT_URL = "/docs", "/redoc", "/docs/oauth2-redirect"


def install_offline_docs(app: FastAPI) -> None:
    """Serve /docs and /redoc with assets from the package instead of a CDN."""
    app.mount(STATIC_URL, StaticFiles(directory=ASSETS), name="docs-assets")

    def local(request: Request, path: str) -> str:
        return f"{request.scope.get('root_path', '')}{path}"

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=local(request, app.openapi_url or "/openapi.json"),
            title=f"{app.title} - Swagger UI", oauth2_redirect_url=local(request, OAUTH2_REDIRECT_URL),
            swagger_js_url=local(request, f"{STATIC_URL}/swagger-ui-bundle.js"),
            swagger_css_url=local(request, f"{STATIC_URL}/swagger-ui.css"),
            swagger_favicon_url=local(request, f"{STATIC_URL}/favicon.png"))

    @app.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        return get_redoc_html(
            openapi_url=local(request, app.openapi_url or "/openapi.json"), title=f"{app.title} - ReDoc",
            redoc_js_url=local(request, f"{STATIC_URL}/redoc.standalone.js"),
            redoc_favicon_url=local(request, f"{STATIC_URL}/favicon.png"), with_google_fonts=False)


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
