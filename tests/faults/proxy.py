"""A TCP proxy in front of a Kafka-protocol broker that can make the broker "crash" at will.

Why a proxy: the local broker (tansu) keeps its log in memory, so killing the process also erases
every message — unlike Apache Kafka, whose log survives a crash on disk. With the clients talking
to the broker only through this proxy (the broker advertises the proxy's address in its metadata),
cutting every connection at once with a TCP reset and refusing new ones looks to the clients
exactly like a dead broker, while the log behind it survives as a durable broker's would.

``withhold_next_ack`` sets up the worst moment for a producer to lose its broker: the broker has
appended a produce request (consumers can read it) but its acknowledgement never reaches the
client; a crash then leaves the client unable to know the batch was written, and it sends it
again — the duplicates a real crash leaves on a topic, after consumers have handled the originals.

The proxy runs its own event loop in a thread, so its forwarding does not depend on how busy the
test's loop is; the control methods are safe to call from any thread or loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from shared.broker import free_port

#: Kafka API key of a Produce request.
PRODUCE = 0
_SIZE = struct.Struct(">i")
_REQUEST_HEAD = struct.Struct(">hhi")  # api_key, api_version, correlation_id
_RESPONSE_HEAD = struct.Struct(">i")  # correlation_id
_LINGER_ZERO = struct.pack("ii", 1, 0)


def _frames(buffer: bytearray) -> list[bytes]:
    """Take every complete size-prefixed Kafka frame (prefix included) off the buffer's front."""
    frames = []
    while len(buffer) >= 4:
        size = _SIZE.unpack_from(buffer)[0]
        if len(buffer) < 4 + size:
            break
        frames.append(bytes(buffer[:4 + size]))
        del buffer[:4 + size]
    return frames


@dataclass(eq=False)
class _Link:
    """One client connection and its connection to the broker."""

    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    #: The correlation id of the produce request on this link whose answer is withheld, if any.
    withheld: int | None = None


class CrashableProxy:
    """Forwards ``127.0.0.1:port`` to a broker; ``crash`` resets all connections, ``revive`` accepts again."""

    def __init__(self, upstream: str, port: int | None = None) -> None:
        host, _, upstream_port = upstream.rpartition(":")
        self.upstream_host, self.upstream_port = host, int(upstream_port)
        self.port = port or free_port()
        #: Acknowledgements swallowed (see ``withhold_next_ack``).
        self.withheld = 0
        self._links: set[_Link] = set()
        self._server: asyncio.Server | None = None
        self._withhold_topic: bytes | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="crashable-proxy", daemon=True)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def is_up(self) -> bool:
        return self._server is not None

    # --- control (any thread) -------------------------------------------------------------

    def start(self) -> CrashableProxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def crash(self) -> None:
        """Reset every open connection and stop listening, as a broker host that dies does."""
        self._call(self._crash())

    def revive(self) -> None:
        """Accept connections again: the broker is back, with its log."""
        self._call(self._listen())

    def withhold_next_ack(self, topic: str) -> None:
        """Swallow the broker's acknowledgement of the next produce request carrying ``topic``:
        the records are in the log, the client waits for an answer that does not come."""
        self._call(self._withhold(topic.encode()))

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        self._call(self._crash())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def _call(self, coroutine: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=30)

    # --- the proxy's own loop -------------------------------------------------------------

    async def _withhold(self, topic: bytes) -> None:
        self._withhold_topic = topic

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port,
                                                      reuse_address=True)

    async def _crash(self) -> None:
        server, self._server = self._server, None
        self._withhold_topic = None
        if server is not None:
            server.close()  # new connection attempts are now refused
        for link in list(self._links):
            self._reset(link)

    def _reset(self, link: _Link) -> None:
        """Drop both sides with a TCP reset (SO_LINGER 0), not an orderly close."""
        self._links.discard(link)
        for task in link.tasks:
            if task is not asyncio.current_task():
                task.cancel()
        for writer in (link.client, link.upstream):
            sock = writer.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
            writer.transport.abort()

    async def _accept(self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream = await asyncio.open_connection(self.upstream_host, self.upstream_port)
        except OSError:
            client.transport.abort()
            return
        if self._server is None:  # crashed while connecting
            client.transport.abort()
            upstream.transport.abort()
            return
        link = _Link(client, upstream)
        self._links.add(link)
        link.tasks = [asyncio.create_task(self._requests(link, client_reader)),
                      asyncio.create_task(self._responses(link, upstream_reader))]

    async def _requests(self, link: _Link, reader: asyncio.StreamReader) -> None:
        """Client → broker: forward; note the first produce request for the withheld topic."""
        pending = bytearray()
        try:
            while data := await reader.read(65536):
                pending += data
                for frame in _frames(pending):
                    api_key, _version, correlation = _REQUEST_HEAD.unpack_from(frame, 4)
                    topic = self._withhold_topic
                    if api_key == PRODUCE and topic is not None and topic in frame and link.withheld is None:
                        self._withhold_topic = None
                        link.withheld = correlation
                link.upstream.write(data)
                await link.upstream.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._close_quietly(link)

    async def _responses(self, link: _Link, reader: asyncio.StreamReader) -> None:
        """Broker → client, whole frames, except the withheld acknowledgement."""
        pending = bytearray()
        try:
            while data := await reader.read(65536):
                pending += data
                for frame in _frames(pending):
                    if link.withheld is not None and _RESPONSE_HEAD.unpack_from(frame, 4)[0] == link.withheld:
                        link.withheld = None
                        self.withheld += 1
                        continue
                    link.client.write(frame)
                await link.client.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._close_quietly(link)

    def _close_quietly(self, link: _Link) -> None:
        """One side ended on its own (a client closing): end the other side too."""
        if link in self._links:
            self._links.discard(link)
            for task in link.tasks:
                if task is not asyncio.current_task():
                    task.cancel()
            for writer in (link.client, link.upstream):
                writer.transport.close()
