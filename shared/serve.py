"""Container entry point: ``python -m shared.serve`` serves the service named by OTO_SERVICE,
in OTO_WORKERS uvicorn worker processes (default 1)."""

from __future__ import annotations

import importlib
import os
import shutil
import sys
import tempfile
from typing import Any

import uvicorn
from fastapi import FastAPI

from shared.observability import MULTIPROCESS_DIR
from shared.settings import DevelopmentSecrets, Settings


def main() -> None:
    settings = Settings()
    try:
        settings.refuse_development_secrets()
    except DevelopmentSecrets as refused:  # one line for the operator, not a traceback
        sys.exit(str(refused))
    options: dict[str, Any] = {"host": os.environ.get("OTO_HOST", "0.0.0.0"),
                               "port": int(os.environ.get("OTO_PORT", "8000")), "log_config": None,
                               "access_log": False, "timeout_graceful_shutdown": 20}
    if settings.workers > 1:  # uvicorn starts the workers and starts a new one when one dies
        # Before any worker imports prometheus_client: each writes its metrics to files there,
        # and /metrics reads them all (a fresh folder: no counts of an earlier run).
        os.environ[MULTIPROCESS_DIR] = tempfile.mkdtemp(prefix=f"oto-metrics-{settings.service}-")
        try:
            uvicorn.run("shared.serve:app_from_environment", factory=True, workers=settings.workers,
                        **options)
        finally:
            shutil.rmtree(os.environ[MULTIPROCESS_DIR], ignore_errors=True)
    else:
        uvicorn.run(app_from_environment(settings), **options)


def app_from_environment(settings: Settings | None = None) -> FastAPI:
    """The service OTO_SERVICE names, built from the environment (each worker builds its own)."""
    settings = settings or Settings()
    module = importlib.import_module(f"services.{settings.service}.app")
    app: FastAPI = module.create_app(settings)
    return app


if __name__ == "__main__":
    main()
