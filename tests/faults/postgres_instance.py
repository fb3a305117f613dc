"""A PostgreSQL server of a test's own, made with ``initdb`` in a temporary folder.

A test that stops the database server must not stop the one every other test uses, so it gets a
throwaway instance on a free loopback port. ``stop`` is ``pg_ctl -m immediate``: the postmaster
and its backends quit at once without a checkpoint, as in a crash, and the next start replays the
WAL. As root, the binaries run as the ``postgres`` OS user (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from shared.broker import free_port


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name))
    if not found:
        raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
    return Path(found[-1])


class PostgresInstance:
    """``initdb``, ``start``, ``stop`` (immediate), ``remove``; URLs for databases on it."""

    def __init__(self) -> None:
        self.bin = _bin_dir()
        self.port = free_port()
        # Not under pytest's tmp_path: that folder is private to root, the server runs as postgres.
        self.root = Path(tempfile.mkdtemp(prefix="oto-faults-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root
        self.log = self.root / "server.log"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)

    @property
    def server_url(self) -> str:
        """libpq URL of the maintenance database (for CREATE DATABASE)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        """SQLAlchemy asyncpg URL of a database on this server."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *command: str | Path) -> None:
        args = [str(part) for part in command]
        if self._as_postgres:
            args = ["runuser", "-u", "postgres", "--", *args]
        done = subprocess.run(args, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{Path(str(command[0])).name} failed: {done.stdout}\n{done.stderr}")

    def init(self) -> PostgresInstance:
        self._run(self.bin / "initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "--no-sync",
                  "--encoding=UTF8", "--locale=C")
        return self

    def start(self) -> None:
        options = f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1"
        self._run(self.bin / "pg_ctl", "-D", self.data, "-l", self.log, "-o", options, "-w", "-t", "60",
                  "start")

    def stop(self) -> None:
        """Immediate shutdown: every backend killed, no checkpoint; the next start recovers."""
        self._run(self.bin / "pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")

    def is_running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def remove(self) -> None:
        """Stop the server if it runs (SIGKILL to the postmaster if pg_ctl cannot) and delete it all."""
        if self.is_running():
            try:
                self.stop()
            except RuntimeError:
                pid = int((self.data / "postmaster.pid").read_text().splitlines()[0])
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.root, ignore_errors=True)
