"""Live updates: a commit that changed the read model wakes every open browser (Server-Sent Events)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from dashboard.fold import CHANGED_KEY
from shared.db import signal_after_commit

NOTIFY_KEY = "dashboard_notify"
#: A comment line this often keeps proxies from closing a quiet stream.
KEEPALIVE_SECONDS = 15.0


class Changes:
    """A version number that grows with each committed change; waiters wake when it does."""

    def __init__(self) -> None:
        self.version = 0
        self._changed = asyncio.Event()
        self.closed = False

    def notify(self) -> None:
        self.version += 1
        self._changed.set()
        self._changed = asyncio.Event()

    def close(self) -> None:
        """Let every stream end (the app is stopping)."""
        self.closed = True
        self.notify()

    async def wait(self, seen: int, timeout: float) -> int:
        """The version once it differs from ``seen``, or ``seen`` after ``timeout``."""
        changed = self._changed
        if self.version != seen:
            return self.version
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), timeout)
        return self.version

    async def stream(self, is_disconnected: Callable[[], Any]) -> AsyncIterator[str]:
        """The SSE body: ``changed`` with the version after each change, a comment when quiet."""
        seen = self.version
        yield f"retry: 2000\nevent: ready\ndata: {seen}\n\n"
        while not self.closed and not await is_disconnected():
            version = await self.wait(seen, KEEPALIVE_SECONDS)
            if self.closed:
                return
            if version == seen:
                yield ": keepalive\n\n"
                continue
            seen = version
            yield f"event: changed\ndata: {version}\n\n"


def notify_info(changes: Changes) -> dict[str, Callable[[], None]]:
    """Session ``info`` that makes a commit of the fold notify ``changes``."""
    return {NOTIFY_KEY: changes.notify}


signal_after_commit(CHANGED_KEY, NOTIFY_KEY)
