"""`ssc serve --workers N` (app/cli/workers.py): connections opened together, and kept open as partner
systems and load balancers keep them, are spread over the workers rather than all taken by the
first worker to wake; and a port another server holds is refused, not shared."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from uvicorn.config import STARTUP_FAILURE

from app.cli.workers import worker_socket
from tests.procsrv import ServeProcess, worker

CONNECTIONS = 32
CALLS = 3


def _calls_on_one_connection(base: str, n: int, gate: threading.Barrier) -> None:
    with httpx.Client(base_url=base, timeout=20) as client:  # one connection, kept alive
        gate.wait()
        for call in range(CALLS):
            assert client.get("/readyz", headers={"x-request-id": f"conn-{n}-{call}"}).status_code == 200


def _listening_sockets(port: int) -> int:
    """How many sockets listen on 127.0.0.1:`port` (Linux's /proc/net/tcp: state 0A is LISTEN)."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for row in rows if row.split()[1] == f"0100007F:{port:04X}" and row.split()[3] == "0A")


def test_connections_opened_together_are_spread_over_the_workers(db_url, tmp_path):
    key_file = tmp_path / "keys.env"
    with worker(db_url, key_file, "--workers", "2") as base:
        # A socket per worker; /readyz answered from one, the other listens once its policy is loaded.
        deadline = time.monotonic() + 30
        while _listening_sockets(int(base.rsplit(":", 1)[1])) < 2:
            assert time.monotonic() < deadline, "not two workers each listening on a socket of its own"
            time.sleep(0.05)
        gate = threading.Barrier(CONNECTIONS)
        threads = [
            threading.Thread(target=_calls_on_one_connection, args=(base, n, gate))
            for n in range(CONNECTIONS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    log = next(tmp_path.glob("worker-*.log")).read_text(encoding="utf-8")
    served: dict[int, set[int]] = {}  # connection -> the workers that answered it
    for line in log.splitlines():
        entry = json.loads(line)
        request_id = entry.get("request_id") or ""
        if entry["logger"] == "uvicorn.access" and request_id.startswith("conn-"):
            served.setdefault(int(request_id.split("-")[1]), set()).add(entry["pid"])
    assert len(served) == CONNECTIONS and all(len(pids) == 1 for pids in served.values())
    per_worker = Counter(next(iter(pids)) for pids in served.values())
    # By the kernel's hash, each worker's share is binomial: fewer than 6 of 32 is a 1-in-9,000 event.
    assert len(per_worker) == 2 and min(per_worker.values()) >= 6, per_worker


def test_a_port_another_server_listens_on_is_refused_not_shared(db_url, tmp_path):
    server = ServeProcess(db_url, tmp_path / "keys.env", "--workers", "2")
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # even one that would share
        other.bind(("127.0.0.1", server.port))
        other.listen()
        server.start(wait=False)
        try:
            exit_code = server.process.wait(timeout=60)
        finally:
            server.stop()
    assert exit_code == STARTUP_FAILURE, server.log.read_text(errors="replace")[-2000:]
    assert "Address already in use" in server.log.read_text(errors="replace")


def test_a_worker_finding_its_address_taken_fails_as_a_worker_that_did_not_start():
    """The address taken between the supervisor's check and a worker's bind: the worker exits with
    uvicorn's STARTUP_FAILURE, on which the supervisor stops rather than restarting it forever."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        with pytest.raises(SystemExit) as exited:
            worker_socket(socket.AF_INET, "127.0.0.1", other.getsockname()[1])
    assert exited.value.code == STARTUP_FAILURE
    # Beside another worker's socket, it binds.
    first = worker_socket(socket.AF_INET, "127.0.0.1", 0)
    with first, worker_socket(socket.AF_INET, "127.0.0.1", first.getsockname()[1]) as second:
        assert second.getsockname() == first.getsockname()
