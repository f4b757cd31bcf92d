"""`ssc serve` worker processes on 127.0.0.1, for tests where two servers share one database."""

from __future__ import annotations

import os
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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def worker(database_url: str, key_file: Path, *args: str, **settings: str) -> Iterator[str]:
    """One `ssc serve` process (its own engine, policy index and audit writer; `args` e.g.
    "--workers", "2"); yields its base URL once /readyz says the policy is loaded. Stopped (then
    killed) on exit. Its log (worker-PORT.log) and metrics folder are written next to `key_file`."""
    port = free_port()
    env = {
        **os.environ,
        "SSC_DATABASE_URL": database_url,
        "SSC_KEY_FILE": str(key_file),
        "SSC_METRICS_DIR": str(key_file.with_name(f"metrics-{port}")),
        **{f"SSC_{k.upper()}": v for k, v in settings.items()},
    }
    log = key_file.with_name(f"worker-{port}.log")
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("ssc")), "serve", "--port", str(port), *args],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"worker exited: {log.read_text(errors='replace')[-2000:]}")
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("worker did not become ready")
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def workers(count: int, database_url: str, key_file: Path, **settings: str) -> Iterator[list[str]]:
    with ExitStack() as stack:
        yield [stack.enter_context(worker(database_url, key_file, **settings)) for _ in range(count)]
