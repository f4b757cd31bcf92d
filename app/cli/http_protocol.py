"""The HTTP protocol `ssc serve` gives uvicorn: its httptools one, with TCP_NODELAY on every connection.

With several workers the listening sockets are made without naming TCP as their protocol (by uvicorn as
by app/cli/workers.py), and asyncio sets TCP_NODELAY only on sockets that name it. Without it, an answer
written in two parts (headers, then body) waits for the client's delayed ACK: 40 ms added to every
request (measured with `bench/load.py`: `myPermissions` at 1.4 ms with one worker, 44 ms with two). A
single worker binds through asyncio, which sets it; setting it again is harmless.
"""

from __future__ import annotations

import asyncio
import socket

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class NoDelayHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)
