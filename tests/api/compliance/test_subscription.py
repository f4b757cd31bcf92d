"""The change stream over graphql-transport-ws: an auditor subscribed on one connection receives an
audit event that another process (the `ssc` command) commits; a connection without a valid token is
closed before any subscription; the legacy protocol is not offered; subscriptions per connection
are limited."""

from __future__ import annotations

import asyncio
import os

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, NegotiationError

from tests.cli.commands import ssc

SUBSCRIBE = "subscription($t: String) { auditEvents(tenant: $t) { tenant seq action actor } }"
WAIT_S = 15


def ws_url(api) -> str:
    return api.base.replace("http://", "ws://") + "/graphql"


async def opened(api, token: str | None, protocol: str = "graphql-transport-ws"):
    socket = await connect(ws_url(api), subprotocols=[protocol], open_timeout=WAIT_S)
    payload = {"authorization": f"Bearer {token}"} if token else {}
    await socket.send(orjson.dumps({"type": "connection_init", "payload": payload}).decode())
    return socket


async def message(socket) -> dict:
    return orjson.loads(await asyncio.wait_for(socket.recv(), WAIT_S))


async def test_an_event_written_by_another_process_reaches_the_auditor(api, db_url, tmp_path):
    socket = await opened(api, api.tokens["gz_auditor"])
    try:
        assert (await message(socket))["type"] == "connection_ack"
        request = {"query": SUBSCRIBE, "variables": {"t": "cn/440000/440100"}}
        await socket.send(orjson.dumps({"id": "1", "type": "subscribe", "payload": request}).decode())
        await asyncio.sleep(1)  # the stream starts from what is committed when it opens
        env = {**os.environ, "SSC_DATABASE_URL": db_url, "SSC_KEY_FILE": str(tmp_path / "keys.env")}
        done = await asyncio.to_thread(
            ssc, env, "tokens", "create", "--tenant", "cn/440000/440100/440106", "--role", "operator"
        )
        assert done.returncode == 0, done.stderr
        got = await message(socket)
        assert got["type"] == "next" and got["id"] == "1", got
        assert got["payload"].get("data"), got
        event = got["payload"]["data"]["auditEvents"]
        assert event["tenant"] == "cn/440000/440100/440106" and event["actor"].startswith("cli:")
        # Nothing from outside the subscribed area, nor a token: the payload is the event as stored.
        assert "ssc_" not in orjson.dumps(got).decode()
    finally:
        await socket.close()


async def test_without_a_valid_token_the_connection_is_closed(api):
    for token in (None, "ssc_not-a-token"):
        socket = await opened(api, token)
        with pytest.raises(ConnectionClosed) as closed:
            await message(socket)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


async def test_the_legacy_protocol_is_not_offered(api):
    with pytest.raises((InvalidStatus, NegotiationError, ConnectionClosed)):
        socket = await opened(api, api.tokens["gz_auditor"], protocol="graphql-ws")
        await message(socket)


async def test_subscriptions_per_connection_are_limited_and_outsiders_refused(api):
    socket = await opened(api, api.tokens["gz_auditor"])
    try:
        assert (await message(socket))["type"] == "connection_ack"
        for n in range(5):
            await socket.send(
                orjson.dumps({"id": str(n), "type": "subscribe", "payload": {"query": SUBSCRIBE}}).decode()
            )
        await socket.send(
            orjson.dumps({"id": "6", "type": "subscribe", "payload": {"query": SUBSCRIBE}}).decode()
        )
        refused = await message(socket)
        assert refused["type"] == "error" and refused["id"] == "6"
        assert "limit" in refused["payload"][0]["message"]
    finally:
        await socket.close()
    socket = await opened(api, api.tokens["gz_auditor"])
    try:
        assert (await message(socket))["type"] == "connection_ack"
        request = {"query": SUBSCRIBE, "variables": {"t": "cn/440000/440300"}}  # Shenzhen
        await socket.send(orjson.dumps({"id": "1", "type": "subscribe", "payload": request}).decode())
        got = await message(socket)
        assert got["type"] in ("error", "next"), got
        errors = got["payload"] if got["type"] == "error" else got["payload"]["errors"]
        assert errors[0]["extensions"]["code"] == "FORBIDDEN"
    finally:
        await socket.close()


async def test_a_bug_in_the_stream_is_masked(api, monkeypatch):
    from app.ops.compliance import events

    async def broken(*args, **kwargs):
        raise RuntimeError("secret internals")
        yield  # an async generator

    monkeypatch.setattr(events, "follow_events", broken)
    socket = await opened(api, api.tokens["gz_auditor"])
    try:
        assert (await message(socket))["type"] == "connection_ack"
        await socket.send(
            orjson.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE}}).decode()
        )
        got = await message(socket)
        text = orjson.dumps(got).decode()
        assert "secret" not in text and "INTERNAL" in text, got
    finally:
        await socket.close()
