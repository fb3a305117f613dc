"""Plumbing the REST-read and scale benchmarks share: throwaway databases, servers as child
processes, the wrk load generator, tokens and RSS samples.

Everything here talks to 127.0.0.1 only and cleans up after itself in ``finally``: databases are
dropped, processes terminated (killed if they do not stop), temporary files removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from shared import migrations
from shared.auth import mint_token
from shared.broker import free_port
from shared.settings import Settings

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
ROOT = Path(__file__).resolve().parent.parent
WRK_SCRIPT = Path(__file__).resolve().parent / "wrk_targets.lua"
#: Marks the JSON line the wrk script's ``done()`` prints, so wrk's own text can be ignored.
WRK_MARKER = "WRK-JSON "


# --- databases ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Database:
    """A database on the local server; the URLs the service and asyncpg want."""

    name: str

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:5432/{self.name}"

    @property
    def sqlalchemy_url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{self.name}"


async def admin_sql(statement: str) -> None:
    """One admin statement (CREATE/DROP DATABASE) on the local server."""
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@contextlib.contextmanager
def throwaway_database(service: str, label: str) -> Iterator[Database]:
    """A new database migrated to the service's head by its own migrations; dropped afterwards."""
    database = Database(f"oto_bench_{label}_{uuid.uuid4().hex[:8]}")
    asyncio.run(admin_sql(f'CREATE DATABASE "{database.name}"'))
    try:
        migrations.upgrade_sync(service, database.sqlalchemy_url)
        yield database
    finally:
        asyncio.run(admin_sql(f'DROP DATABASE IF EXISTS "{database.name}" WITH (FORCE)'))


# --- servers ------------------------------------------------------------------------------

@dataclass
class Server:
    """A server running as a child process on a loopback port."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss_mib(self) -> float:
        """Resident set size from /proc: what the kernel really holds for the process."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError(f"no VmRSS for {self.name}")

    def cpu_seconds(self) -> float:
        """User + system CPU time the server has used so far, its worker processes included."""
        return tree_cpu_seconds(self.process.pid)

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the log other than access lines (those say nothing of a failure)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join([line for line in text.splitlines() if "uvicorn.access" not in line][-lines:])


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU of a process and every living descendant so far (/proc/<pid>/stat): a
    server with several uvicorn workers, or the whole embedded system."""
    total = 0
    for pid in _descendants(root):
        with contextlib.suppress(OSError):  # ended meanwhile
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds() -> float:
    """User + system CPU of every PostgreSQL server process so far (/proc, by command name): the
    runs go one after another, so the difference over a run is that run's database work. A
    backend that has ended (a pool closing idle connections) took its CPU with it from this sum;
    the postmaster's count of its ended children's CPU (cutime, cstime) puts it back, so the
    difference never goes negative."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):  # ended meanwhile
            head, _, rest = stat.read_text().rpartition(")")
            if head.endswith("(postgres"):
                fields = rest.split()
                total += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
    return total / os.sysconf("SC_CLK_TCK")


def _descendants(pid: int) -> Iterator[int]:
    yield pid
    with contextlib.suppress(OSError):
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            yield from _descendants(int(child))


def service_env(service: str, database: Database, port: int) -> dict[str, str]:
    """The service as ``shared.serve`` runs it in production, minus the broker: a read or list
    benchmark needs neither the relay nor the consumers (the broker address points nowhere)."""
    return {**os.environ, "OTO_ENV": "dev", "OTO_SERVICE": service, "OTO_HOST": "127.0.0.1",
            "OTO_PORT": str(port),
            "OTO_DATABASE_URL": database.sqlalchemy_url, "OTO_MIGRATE_ON_START": "false",
            "OTO_RELAY_ENABLED": "false", "OTO_CONSUMERS_ENABLED": "false",
            "OTO_KAFKA_BOOTSTRAP": "127.0.0.1:1", "OTO_LOG_JSON": "true", "OTO_LOG_LEVEL": "INFO"}


@contextlib.contextmanager
def serving(name: str, module: str, env: dict[str, str], log_dir: Path,
            ready_timeout: float = 60.0) -> Iterator[Server]:
    """Start ``python -m module`` (port from ``OTO_PORT``), wait for /healthz, stop it at the end."""
    log_path = log_dir / f"{name}.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen([sys.executable, "-m", module], env=env, cwd=ROOT,
                                   stdout=log, stderr=subprocess.STDOUT)
    server = Server(name, int(env["OTO_PORT"]), process, log_path)
    try:
        _wait_healthy(server, ready_timeout)
        yield server
    finally:
        _stop(process)


def _wait_healthy(server: Server, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(f"{server.name} exited:\n{server.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if client.get(f"{server.url}/healthz").status_code == 200:
                    return
            time.sleep(0.2)
    raise RuntimeError(f"{server.name} not healthy after {timeout}s:\n{server.log_tail()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=25)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def new_port() -> int:
    return free_port()


@contextlib.contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A temporary folder for logs and target lists, removed at the end (logs can be large)."""
    path = Path(tempfile.mkdtemp(prefix=f"oto-bench-{prefix}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# --- tokens -------------------------------------------------------------------------------

def bearer(role: str, *, site: str | None = None, department: str | None = None) -> str:
    """A dev token the services accept (same ``OTO_*`` environment, so the same key)."""
    return mint_token(Settings(), subject=f"bench-{role}", role=role, site=site, department=department)


@functools.cache
def team_token(site: str) -> str:
    """One team-staff token per site, as one staff member holds one (wrk sends it as is)."""
    return bearer("team_staff", site=site)


# --- wrk ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    """One request the load generator may send: a path and the token to send with it."""

    path: str
    token: str


@dataclass(frozen=True)
class LoadResult:
    """What one wrk run measured; latencies in milliseconds."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    #: Requests wrk gave up on after its timeout (10 s): not in the latencies, so the p99 is then a
    #: lower bound. Reported, not fatal: a timeout is no cheaper answer, only a machine too busy.
    timeouts: int = 0
    #: Server CPU (user + system) per request during the run: robust to a busy machine, where
    #: throughput and latency are not.
    cpu_ms: float | None = None
    #: PostgreSQL's CPU (every server process) per request during the run: the database's share of
    #: a request, which the service's own CPU does not show.
    db_cpu_ms: float | None = None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def ensure_wrk() -> str:
    """wrk is a Debian package; install it when missing (root only), saying so."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        raise RuntimeError("the benchmarks need wrk: run `apt-get install -y wrk` as root")
    print("wrk is not installed: installing the Debian package (apt-get install -y wrk) …", flush=True)
    for attempt in (["apt-get", "install", "-y", "wrk"], ["apt-get", "update"],
                    ["apt-get", "install", "-y", "wrk"]):
        subprocess.run(attempt, stdout=subprocess.DEVNULL, timeout=600, check=False)
        if shutil.which("wrk"):
            break
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("installing wrk failed: run `apt-get install -y wrk` as root")
    return found


def write_targets(path: Path, targets: Sequence[Target]) -> Path:
    """One ``path<TAB>token`` line per request the wrk script may pick."""
    if not targets:
        raise ValueError("no targets to load")
    path.write_text("".join(f"{t.path}\t{t.token}\n" for t in targets))
    return path


def start_wrk(base_url: str, targets_file: Path, *, connections: int, seconds: float,
              threads: int = 1) -> subprocess.Popen[str]:
    """Start wrk in the background (keep-alive, fixed concurrency, random targets)."""
    if not base_url.startswith("http://127.0.0.1:"):
        raise ValueError("the benchmarks load loopback only")
    command = [ensure_wrk(), f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
               "--timeout", "10s", "-s", str(WRK_SCRIPT), base_url, "--", str(targets_file)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish_wrk(process: subprocess.Popen[str], timeout: float) -> LoadResult:
    """Wait for a wrk run and parse the JSON its script printed."""
    try:
        output, _ = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    for line in output.splitlines():
        if line.startswith(WRK_MARKER):
            data = json.loads(line[len(WRK_MARKER):])
            return LoadResult(requests=data["requests"], seconds=data["duration_us"] / 1e6,
                              p50_ms=data["p50_us"] / 1000, p99_ms=data["p99_us"] / 1000,
                              errors=sum(n for kind, n in data["errors"].items() if kind != "timeout"),
                              timeouts=data["errors"]["timeout"])
    raise RuntimeError(f"wrk printed no result:\n{output[-2000:]}")


def run_wrk(base_url: str, targets_file: Path, *, connections: int, seconds: float) -> LoadResult:
    """One bounded wrk run in the foreground."""
    process = start_wrk(base_url, targets_file, connections=connections, seconds=seconds)
    return finish_wrk(process, timeout=seconds + 60)


def measure(server: Server, targets_file: Path, *, connections: int, seconds: float,
            warmup: float) -> LoadResult:
    """Warm up (pools filled, code paths hot), then the measured run; refuse failed requests,
    since an error response is cheaper and would flatter the figure."""
    if warmup > 0:
        run_wrk(server.url, targets_file, connections=connections, seconds=warmup)
    cpu_before, db_before = server.cpu_seconds(), postgres_cpu_seconds()
    result = run_wrk(server.url, targets_file, connections=connections, seconds=seconds)
    cpu, db_cpu = server.cpu_seconds() - cpu_before, postgres_cpu_seconds() - db_before
    if result.errors:
        raise RuntimeError(f"{result.errors} of {result.requests} requests to {server.name} failed "
                           f"({targets_file.name}); the figures would be wrong. Log:\n"
                           f"{server.log_tail()}")
    if not result.requests:
        return result
    return replace(result, cpu_ms=1000 * cpu / result.requests, db_cpu_ms=1000 * db_cpu / result.requests)


# --- small statistics ---------------------------------------------------------------------

def slope_per_minute(samples: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of ``(seconds, value)`` samples, per minute."""
    if len(samples) < 2:
        return 0.0
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_v = sum(v for _, v in samples) / n
    spread = sum((t - mean_t) ** 2 for t, _ in samples)
    if spread == 0:
        return 0.0
    return 60 * sum((t - mean_t) * (v - mean_v) for t, v in samples) / spread


# --- queries per request ------------------------------------------------------------------

@dataclass(frozen=True)
class Count:
    """What one request ran: SQL statements (through the session or straight on the driver,
    ``shared.db.fetch_autocommit``) and the transactions the session opened around them."""

    statements: int
    transactions: int

    @property
    def round_trips(self) -> int:
        """Each statement, and a BEGIN and a COMMIT (or ROLLBACK) per transaction."""
        return self.statements + 2 * self.transactions


async def _counts(service: str, database: Database, requests: Sequence[Target]) -> list[Count]:
    import importlib

    from sqlalchemy import event

    module = importlib.import_module(f"services.{service}.app")
    settings = Settings(service=service, env="dev", database_url=database.sqlalchemy_url,
                        migrate_on_start=False, relay_enabled=False, consumers_enabled=False,
                        kafka_bootstrap="127.0.0.1:1",
                        log_json=False, log_level="WARNING")
    app = module.create_app(settings)
    counts: list[Count] = []
    executed, begun = [0], [0]
    fetch = asyncpg.Connection.fetch

    def count(*_: object) -> None:
        executed[0] += 1

    def count_begin(*_: object) -> None:
        begun[0] += 1

    async def counted_fetch(self: asyncpg.Connection, *args: Any, **kwargs: Any) -> Any:
        executed[0] += 1  # SQLAlchemy's own statements are prepared ones, never ``fetch``
        return await fetch(self, *args, **kwargs)

    asyncpg.Connection.fetch = counted_fetch  # type: ignore[method-assign]
    try:
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as http:
            event.listen(app.state.engine.sync_engine, "before_cursor_execute", count)
            event.listen(app.state.engine.sync_engine, "begin", count_begin)
            for target in requests:
                executed[0] = begun[0] = 0
                response = await http.get(target.path, headers={"Authorization": f"Bearer {target.token}"})
                response.raise_for_status()
                counts.append(Count(executed[0], begun[0]))
    finally:
        asyncpg.Connection.fetch = fetch  # type: ignore[method-assign]
    return counts


def statement_counts(service: str, database: Database, requests: Sequence[Target]) -> list[int]:
    """SQL statements each request runs, counted in-process on the service's own engine and its
    driver (the pool's pre-ping and the COMMIT are not statements here): shows N+1 patterns plainly."""
    return [c.statements for c in asyncio.run(_counts(service, database, requests))]


def round_trip_counts(service: str, database: Database, requests: Sequence[Target]) -> list[Count]:
    """Statements and transactions each request runs (see ``Count``)."""
    return asyncio.run(_counts(service, database, requests))


# --- where the CPU goes -------------------------------------------------------------------

#: A sample whose stack holds one of these frames belongs to that part, whatever runs at its top.
PROFILE_BY_FRAME = (("pool pre-ping", "_async_ping"), ("audit write", "write_entry (shared/audit.py"))
#: Otherwise the innermost frame from a known package decides.
PROFILE_BY_PACKAGE = (
    ("database layer (SQLAlchemy, asyncpg)", ("sqlalchemy/", "asyncpg/", "greenlet")),
    ("JWT", ("jwt/",)),
    ("logging", ("logging/", "observability.py")),
    ("metrics", ("prometheus_client/",)),
    ("JSON and pydantic", ("pydantic", "json/", "fastapi/encoders", "fastapi/_compat")),
    ("CPR decryption", ("cpr.py", "cryptography/")),
    ("web framework (FastAPI, Starlette, uvicorn)", ("fastapi/", "starlette/", "uvicorn/", "anyio/",
                                                    "httptools")),
    ("application code", ("services/", "shared/")),
    ("event loop", ("asyncio/", "uvloop")),
)


def py_spy() -> str | None:
    """py-spy, if installed (on PATH or in the virtualenv): the profile is optional."""
    beside = Path(sys.executable).parent / "py-spy"
    return shutil.which("py-spy") or (str(beside) if beside.exists() else None)


def _category(frames: list[str]) -> str:
    for name, frame in PROFILE_BY_FRAME:
        if any(frame in f for f in frames):
            return name
    for f in reversed(frames):
        for name, packages in PROFILE_BY_PACKAGE:
            if any(package in f for package in packages):
                return name
    return "other"


def profile_shares(server: Server, targets_file: Path, output: Path, *, connections: int,
                   seconds: int) -> dict[str, float] | None:
    """Sample the server with py-spy under wrk's load (see ``profile_under``)."""
    return profile_under(server, output, seconds=seconds, load=lambda: run_wrk(
        server.url, targets_file, connections=connections, seconds=seconds))


def profile_under(server: Server, output: Path, *, seconds: int,
                  load: Callable[[], object]) -> dict[str, float] | None:
    """Sample the server with py-spy while ``load`` runs (about ``seconds`` long) and split its
    CPU samples by part of the stack; None without py-spy. SQLAlchemy runs sync code in
    greenlets whose stacks py-spy shows apart, so the database layer's share includes the audit
    write's own statements. The raw samples stay in ``output`` for a closer look."""
    tool = py_spy()
    if tool is None:
        return None
    spy = subprocess.Popen([tool, "record", "-p", str(server.process.pid), "-d", str(seconds),
                            "-r", "100", "-f", "raw", "--nonblocking", "-o", str(output)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        load()
        spy.wait(timeout=seconds + 30)
    finally:
        _stop(spy)
    return shares_of_samples(output, _category)


def shares_of_samples(output: Path,
                      category_of: Callable[[list[str]], str | None]) -> dict[str, float] | None:
    """Split py-spy's raw samples (one stack a line, frames split by ``;``) by category, largest
    first; a stack whose category is None is left out. None if there are no samples."""
    if not output.exists():
        return None
    counts: dict[str, int] = {}
    for line in output.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        if number.isdigit() and (category := category_of(stack.split(";"))) is not None:
            counts[category] = counts.get(category, 0) + int(number)
    total = sum(counts.values())
    return {name: count / total for name, count in sorted(counts.items(), key=lambda kv: -kv[1])} \
        if total else None
