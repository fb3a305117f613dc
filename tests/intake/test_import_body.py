"""Request bodies on a real server (uvicorn, real sockets): a chunked body over the limit is cut
off with 413 while the service keeps answering; the register import takes CSV only and records
no run for a body that is not a register extract."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from services.intake.app import create_app
from shared.broker import free_port
from tests.intake.factories import cpr
from tests.support import bearer, make_settings

HEADER = "household_ref,site_id,address,cpr,role,unemployed_since,lives_at_address\n"
MEGABYTE = 1_000_000
JSON_LIMIT = 20_000


class Server:
    """The intake app served by uvicorn in a thread, on SQLite, without a broker."""

    def __init__(self, tmp_path: Path, **overrides: object) -> None:
        self.db = tmp_path / "intake.db"
        self.settings = make_settings(database_url=f"sqlite+aiosqlite:///{self.db}", **overrides)
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(uvicorn.Config(create_app(self.settings), host="127.0.0.1", port=port,
                                                    log_config=None, lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the server did not start")
            self.thread.join(0.05)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join()

    def import_runs(self) -> int:
        with sqlite3.connect(self.db) as db:
            return int(db.execute("SELECT count(*) FROM import_runs").fetchone()[0])


class Chunks:
    """A body of ``total`` bytes sent chunked (no Content-Length); counts what was sent."""

    def __init__(self, first: bytes, total: int, filler: bytes) -> None:
        self.first, self.total, self.filler, self.sent = first, total, filler, 0

    def __iter__(self) -> Iterator[bytes]:
        yield self.first
        self.sent = len(self.first)
        chunk = self.filler * (64 * 1024 // len(self.filler))
        while self.sent < self.total:
            self.sent += len(chunk)
            yield chunk


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with Server(tmp_path, max_body_bytes=JSON_LIMIT, max_import_bytes=MEGABYTE) as running:
        yield running


def _post(server: Server, path: str, content: object, content_type: str,
          role: str = "system") -> httpx.Response:
    headers = {**bearer(server.settings, role, site="gellerup"), "content-type": content_type}
    with httpx.Client(timeout=60) as http:
        return http.post(f"{server.url}{path}", content=content, headers=headers)  # type: ignore[arg-type]


def test_a_chunked_json_body_over_the_limit_is_refused_early_and_the_service_keeps_answering(server) -> None:
    body = Chunks(b'{"site_id": "gellerup", "address": "', 60 * MEGABYTE, b"x")
    response = _post(server, "/v1/households", body, "application/json", role="team_staff")
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert body.sent < 60 * MEGABYTE  # the server stopped reading; the client did not send it all
    assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200


def test_a_chunked_csv_import_over_its_own_limit_is_refused_and_records_nothing(server) -> None:
    row = f"R1,gellerup,Gudrunsvej 1,{cpr(84)},mother,2015-06-01,yes\n".encode()
    body = Chunks(HEADER.encode(), 50 * MEGABYTE, row)
    response = _post(server, "/v1/imports", body, "text/csv")
    assert response.status_code == 413
    assert body.sent < 50 * MEGABYTE
    assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
    assert server.import_runs() == 0


def test_an_import_over_the_json_limit_but_within_its_own_is_imported(server) -> None:
    rows = "".join(f"R{n},gellerup,Gudrunsvej {n},{cpr(84)},mother,2015-06-01,yes\n" for n in range(400))
    assert JSON_LIMIT < len(HEADER + rows) < MEGABYTE
    response = _post(server, "/v1/imports", (HEADER + rows).encode(), "text/csv")
    assert response.status_code == 201, response.text
    assert server.import_runs() == 1


def test_an_import_with_a_json_content_type_is_415_and_records_no_run(server) -> None:
    csv = HEADER + f"R1,gellerup,Gudrunsvej 1,{cpr(84)},mother,2015-06-01,yes\n"
    response = _post(server, "/v1/imports", csv.encode(), "application/json")
    assert response.status_code == 415
    assert response.headers["content-type"] == "application/problem+json"
    assert server.import_runs() == 0


@pytest.mark.parametrize(("body", "reason"), [
    (b"", "empty"), (b"  \n", "empty"), (b'{"households": []}', "missing columns"),
    (b"\xff\xfe not text", "not UTF-8")])
def test_an_empty_or_non_csv_import_is_422_naming_the_body_and_records_no_run(server, body, reason) -> None:
    response = _post(server, "/v1/imports", body, "text/csv")
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["field"] == "body" and error["message"].startswith(reason)
    assert server.import_runs() == 0
