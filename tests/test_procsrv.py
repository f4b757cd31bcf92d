"""The test servers' ports: no two test processes of a run are handed the same one."""

from __future__ import annotations

import socket

from tests import procsrv


def _ports_of(monkeypatch, worker: str, count: int, how_many: int) -> list[int]:
    monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", str(count))
    monkeypatch.setattr(procsrv, "_next_ports", None)
    return [procsrv.free_port() for _ in range(how_many)]


def test_each_worker_takes_ports_from_a_block_of_its_own_below_the_ephemeral_range(monkeypatch):
    blocks = [set(_ports_of(monkeypatch, f"gw{i}", 4, 200)) for i in range(4)]
    for i, ports in enumerate(blocks):
        assert len(ports) == 200
        assert all(procsrv.FIRST_PORT <= port < procsrv.EPHEMERAL_START for port in ports)
        assert all(ports.isdisjoint(other) for other in blocks[i + 1 :])


def test_a_port_something_listens_on_is_skipped(monkeypatch):
    first = _ports_of(monkeypatch, "gw0", 1, 1)[0]
    with socket.socket() as other:
        other.bind(("127.0.0.1", first + 1))
        other.listen()
        monkeypatch.setattr(procsrv, "_next_ports", iter([first + 1, first + 2]))
        assert procsrv.free_port() == first + 2
