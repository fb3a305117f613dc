"""Container entry point: ``python -m shared.serve`` serves the service named by OTO_SERVICE."""

from __future__ import annotations

import importlib
import os
import sys

import uvicorn

from shared.settings import DevelopmentSecrets, Settings


def main() -> None:
    settings = Settings()
    try:
        settings.refuse_development_secrets()
    except DevelopmentSecrets as refused:  # one line for the operator, not a traceback
        sys.exit(str(refused))
    module = importlib.import_module(f"services.{settings.service}.app")
    app = module.create_app(settings)
    uvicorn.run(app, host=os.environ.get("OTO_HOST", "0.0.0.0"),
                port=int(os.environ.get("OTO_PORT", "8000")), log_config=None,
                access_log=False, timeout_graceful_shutdown=20)


if __name__ == "__main__":
    main()
