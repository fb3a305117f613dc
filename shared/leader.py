"""One leader among a service's uvicorn workers (``OTO_WORKERS`` > 1) on one host.

The outbox relay and the Kafka consumers must run in exactly one worker. The leader is the worker
that holds an exclusive ``flock`` on ``<data dir>/<service>.leader`` (the temporary folder when
the data folder is not writable, as in the container image): the kernel releases the lock
when its holder dies however it dies (a crash, SIGKILL, the OOM killer), so there is no stale
lease to expire and no clock to trust. The other workers try again every ``FOLLOW_SECONDS``;
the first to get the lock starts the relay and the consumers (uvicorn also starts a new worker
in the dead one's place, which becomes a follower). Several hosts (containers) of one service
need more: there the relay's PostgreSQL advisory lock and the consumer groups take over.

A commit in any worker wakes the leader's relay through a datagram on a Unix socket in Linux's
abstract namespace (no file to clean up; the name dies with the leader), so an event written by
a follower is published as promptly as one written by the leader. Elsewhere the relay polls.

Migrating and seeding the database at start run under a second lock, one worker after another,
so two workers never run the same migration at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
import socket
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

log = logging.getLogger(__name__)
#: How often a follower tries to become the leader (one non-blocking system call).
FOLLOW_SECONDS = 0.5


class Leadership:
    """The leader lock of one service on this host, and the leader's wake-up socket."""

    def __init__(self, data_dir: Path, service: str) -> None:
        self.path = (_writable(data_dir) / f"{service}.leader").resolve()
        self.prepare_path = self.path.with_suffix(".prepare")
        digest = hashlib.sha256(str(self.path).encode()).hexdigest()[:24]
        self.address = f"\0oto-wake-{digest}"
        self._fd: int | None = None
        self._listener: socket.socket | None = None
        self._sender: socket.socket | None = None

    @property
    def is_leader(self) -> bool:
        return self._fd is not None

    def try_acquire(self) -> bool:
        """Become the leader if no other process is; True if this process is it now."""
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    async def follow(self, become_leader: Callable[[], Awaitable[None]]) -> None:
        """Wait until this process is the leader, then run ``become_leader`` once."""
        while not self.try_acquire():
            await asyncio.sleep(FOLLOW_SECONDS)
        log.info("this worker is now the leader", extra={"pid": os.getpid()})
        await become_leader()

    def listen(self, wake: Callable[[], None]) -> None:
        """In the leader: call ``wake`` on every datagram another worker (or this one) sends."""
        if not sys.platform.startswith("linux") or self._listener is not None:
            return
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        listener.bind(self.address)
        listener.setblocking(False)
        self._listener = listener

        def drain() -> None:
            with contextlib.suppress(BlockingIOError, InterruptedError):
                while listener.recv(16):
                    pass
            wake()

        asyncio.get_running_loop().add_reader(listener.fileno(), drain)

    def wake_leader(self) -> None:
        """After a commit that wrote outbox rows, in any worker: nudge the leader's relay. Lost
        when no leader listens (it then finds the rows on its next poll)."""
        if not sys.platform.startswith("linux"):
            return
        if self._sender is None:
            self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sender.setblocking(False)
        with contextlib.suppress(OSError):  # no leader yet, or its queue is full: it is awake
            self._sender.sendto(b"w", self.address)

    @contextlib.asynccontextmanager
    async def preparing(self) -> AsyncIterator[None]:
        """Exclusive among the workers: migrate and seed one worker after another."""
        fd = os.open(self.prepare_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def release(self) -> None:
        """Stop listening and give up the lock (a stopping leader lets a follower take over)."""
        if self._listener is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._listener.fileno())
            self._listener.close()
            self._listener = None
        if self._sender is not None:
            self._sender.close()
            self._sender = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _writable(data_dir: Path) -> Path:
    """The data folder, or the temporary folder where it cannot be written (a container's image
    folder): the workers of one host all choose the same."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError:
        return Path(tempfile.gettempdir())
    return data_dir if os.access(data_dir, os.W_OK) else Path(tempfile.gettempdir())
