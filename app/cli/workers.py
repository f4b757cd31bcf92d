"""`ssc serve --workers N`: uvicorn's worker processes, each listening on a socket of its own.

uvicorn binds one socket and shares it: every worker accepts from it, and the one whose event loop
wakes first takes every pending connection at once (asyncio accepts up to the backlog per wake).
Partner systems and load balancers keep their connections open, so a burst of them stayed with one
worker: with 2 workers and 64 connections, one ran at 93% of a core and the other at 10%
(`bench/load.py`), and two workers answered no more than one.

Here each worker binds its own socket to the same address with SO_REUSEPORT, and the kernel spreads
new connections over the workers' sockets by their addresses' hash. A worker's socket starts
listening only once its startup is done (policy loaded): asyncio listens when it starts serving,
so no connection waits in the queue of a worker that is still loading, and a worker that dies takes
its socket with it. Supervision (restarting a dead worker, passing signals on, graceful shutdown) is
uvicorn's own `Multiprocess`; only the socket it hands each worker differs: a `SocketPerWorker`,
which becomes a fresh socket in each process it is sent to.
"""

from __future__ import annotations

import logging
import socket
import sys

from uvicorn import Config
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

log = logging.getLogger("uvicorn.error")


def worker_socket(family: int, host: str, port: int) -> socket.socket:
    """A socket bound to (host, port) beside the other workers' (not listening yet: asyncio listens
    when the worker starts serving). When another program took the address after the supervisor
    checked it, the worker exits as one that failed to start, and the supervisor stops instead of
    starting it again and again."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    _bind_or_exit(sock, host, port)
    return sock


def _bind_or_exit(sock: socket.socket, host: str, port: int) -> None:
    """Bind, or say why not and exit as a server that failed to start (as uvicorn does)."""
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        log.error("%s:%s: %s", host, port, err)
        sys.exit(STARTUP_FAILURE)


class SocketPerWorker:
    """Stands for the listening socket in the supervisor; unpickled in a worker process (uvicorn
    starts them with `spawn`, which pickles the sockets it passes) it is that worker's own socket."""

    def __init__(self, family: int, host: str, port: int) -> None:
        self.address = (family, host, port)

    def __reduce__(self):
        return worker_socket, self.address


def _free_address(config: Config) -> tuple[int, str, int]:
    """The address the workers will share, once checked free: SO_REUSEPORT would otherwise let this
    server share a port with another one started by mistake (same user) instead of failing. Port 0
    becomes the port the system chose."""
    family = socket.AF_INET6 if config.host and ":" in config.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT, not a listener
        _bind_or_exit(probe, config.host, config.port)
        return family, config.host, probe.getsockname()[1]


def serve_workers(config: Config) -> None:
    """Run `config.workers` workers until a signal stops them."""
    family, host, port = _free_address(config)
    log.info(
        "Uvicorn running on http://%s:%d with %d workers (Press CTRL+C to quit)", host, port, config.workers
    )
    Multiprocess(config, sockets=[SocketPerWorker(family, host, port)]).run()
