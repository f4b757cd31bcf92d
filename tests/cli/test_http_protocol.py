"""`ssc serve`'s HTTP protocol sets TCP_NODELAY on connections accepted from a socket bound the way
uvicorn binds it for several workers (without naming TCP), where asyncio leaves it off and every
answer would wait 40 ms for the client's delayed ACK."""

from __future__ import annotations

import asyncio
import socket

import pytest
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from app.cli.http_protocol import NoDelayHttpToolsProtocol


async def _nodelay_of_accepted_connection(protocol_class) -> int:
    listening = socket.socket(socket.AF_INET)  # as uvicorn's Config.bind_socket makes it: proto 0
    listening.bind(("127.0.0.1", 0))
    listening.listen()
    config = uvicorn.Config(app=lambda scope, receive, send: None, http=protocol_class, lifespan="off")
    config.load()
    accepted: asyncio.Future = asyncio.get_running_loop().create_future()

    class Watched(protocol_class):
        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            sock = transport.get_extra_info("socket")
            accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    state = ServerState()
    server = await asyncio.get_running_loop().create_server(
        lambda: Watched(config=config, server_state=state, app_state={}), sock=listening
    )
    try:
        _, writer = await asyncio.open_connection(*listening.getsockname())
        try:
            return await asyncio.wait_for(accepted, timeout=5)
        finally:
            writer.close()
    finally:
        server.close()
        for connection in list(state.connections):
            connection.transport.close()
        await server.wait_closed()


@pytest.mark.parametrize(
    ("protocol_class", "nodelay"), [(HttpToolsProtocol, False), (NoDelayHttpToolsProtocol, True)]
)
async def test_connections_accepted_from_a_socket_bound_like_uvicorns_get_tcp_nodelay(
    protocol_class, nodelay
):
    # The first case shows why the second is needed: uvicorn's own protocol leaves it off.
    assert bool(await _nodelay_of_accepted_connection(protocol_class)) is nodelay
