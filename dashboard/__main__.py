"""``python -m dashboard <department> [--port N] [--rebuild]``: serve one department's dashboard."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import uvicorn

from dashboard.app import create_app, remove_state, state_path
from shared.departments import Department
from shared.settings import Settings


def serve(department: Department, *, host: str, port: int, rebuild: bool, state: str | None = None) -> None:
    settings = Settings()
    path = state_path(settings, department) if state is None else Path(state)
    if rebuild:
        remove_state(path)
    app = create_app(settings, department, path)
    # SSE streams never end by themselves: give them a short grace on shutdown.
    uvicorn.run(app, host=host, port=port, log_config=None, timeout_graceful_shutdown=3)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m dashboard")
    parser.add_argument("department", choices=[d.value for d in Department])
    parser.add_argument("--host", default=os.environ.get("OTO_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("OTO_PORT", "8011")))
    parser.add_argument("--state", help="The SQLite state file (default <data dir>/dashboard-<dept>.db).")
    parser.add_argument("--rebuild", action="store_true", help="Forget the state and fold from offset 0.")
    args = parser.parse_args()
    serve(Department(args.department), host=args.host, port=args.port, rebuild=args.rebuild, state=args.state)


if __name__ == "__main__":
    main()
