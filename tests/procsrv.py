"""`ssc serve` worker processes on 127.0.0.1, for tests where two servers share one database, or
where a server is signalled, killed and started again."""

from __future__ import annotations

import itertools
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

PROJECT_ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 30


# Each pytest-xdist worker hands out ports from a block of its own, below the kernel's ephemeral range
# (32768 and up on Linux). A port from bind(0) is free at the probe, but the kernel may hand the same
# port to another test process's bind(0) before the server started on it binds (an `ssc serve` takes a
# second to start): that server then fails to bind, and /readyz answers from the other test's server,
# on another database (a CI run once failed so, a valid token refused as UNAUTHENTICATED).
FIRST_PORT, EPHEMERAL_START = 20000, 32768
_next_ports: Iterator[int] | None = None


def _ports() -> Iterator[int]:
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    size = (EPHEMERAL_START - FIRST_PORT) // workers
    start = random.randrange(size)  # two runs at once on one machine rarely start at one port
    for offset in itertools.count():
        yield FIRST_PORT + worker * size + (start + offset) % size


def free_port() -> int:
    """A port nothing listens on, never handed to another test process of this run."""
    global _next_ports
    _next_ports = _next_ports or _ports()
    while True:
        port = next(_next_ports)
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


def ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


class ServeProcess:
    """One `ssc serve` process (its own engine, policy index and audit writer; `args` e.g.
    "--workers", "2") on a port of its own that it keeps across restarts. Its log
    (worker-PORT.log, appended to by each start) and metrics folder are written next to `key_file`."""

    def __init__(self, database_url: str, key_file: Path, *args: str, **settings: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = key_file.with_name(f"worker-{self.port}.log")
        self._args = args
        self._env = {
            **os.environ,
            "SSC_DATABASE_URL": database_url,
            "SSC_KEY_FILE": str(key_file),
            "SSC_METRICS_DIR": str(key_file.with_name(f"metrics-{self.port}")),
            **{f"SSC_{k.upper()}": v for k, v in settings.items()},
        }
        self.process: subprocess.Popen | None = None

    def start(self, *, wait: bool = True) -> float:
        """Start it; with `wait`, return once /readyz says the policy is loaded: the seconds that took."""
        started = time.monotonic()
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(Path(sys.executable).with_name("ssc")), "serve", "--port", str(self.port), *self._args],
                cwd=PROJECT_ROOT,
                env=self._env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        if wait:
            self.wait_ready(started + START_TIMEOUT_S)
        return time.monotonic() - started

    def wait_ready(self, deadline: float) -> None:
        while not ready(self.base):
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited: {self.log.read_text(errors='replace')[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("worker did not become ready")
            time.sleep(0.05)

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def kill(self) -> None:
        """SIGKILL: no shutdown of any kind, as from the OOM killer or an operator's kill -9."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextmanager
def worker(database_url: str, key_file: Path, *args: str, **settings: str) -> Iterator[str]:
    """A started `ServeProcess`: yields its base URL once ready; stopped (then killed) on exit."""
    server = ServeProcess(database_url, key_file, *args, **settings)
    try:
        server.start()
        yield server.base
    finally:
        server.stop()


@contextmanager
def workers(count: int, database_url: str, key_file: Path, **settings: str) -> Iterator[list[str]]:
    with ExitStack() as stack:
        yield [stack.enter_context(worker(database_url, key_file, **settings)) for _ in range(count)]
