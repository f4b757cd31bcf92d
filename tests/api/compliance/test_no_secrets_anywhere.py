"""No full ID number, bank card number, PIN, token or key in anything the compliance plane hands out
or keeps: audit events, exports (JSONL, CSV, XLSX), downloads, the audit trail over GraphQL, the
subscription's messages and the server log, after a run full of partner calls (accepted and refused,
numbers sent as variables and written inline) and administrative changes."""

from __future__ import annotations

import asyncio
import gzip
import logging
import zipfile

import httpx
import orjson
from websockets.asyncio.client import connect

from app.domain.pin import DEFAULT_PIN
from app.ops.compliance.checkpoints import Signer
from app.ops.compliance.exports import export_jsonl, export_table
from app.ops.principals.credentials import create_principal_with_token
from app.settings import get_settings, resolve_signing_key
from tests.api.partner_world import FIN, GZ, HALL, ICBC, grant, pin_change_input, until_permitted

CHANGE = "mutation($i: ChangePasswordInput!) { changePassword(input: $i) { replayed card { pinState } } }"
STATUS = (
    'query($c: String!, $i: String!) { cardStatus(cardNumber: $c, idNumber: $i, purpose: "info_inquiry")'
    " { status } }"
)
EVENTS = (
    "{ auditEvents(first: 200) { edges { node { actor credential action targetId detail requestId } } } }"
)
NEW_PIN, WRONG_PIN = "258036", "975310"


async def _subscribe(base: str, token: str):
    socket = await connect(
        base.replace("http://", "ws://") + "/graphql", subprotocols=["graphql-transport-ws"]
    )
    await socket.send(
        orjson.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}).decode()
    )
    assert orjson.loads(await socket.recv())["type"] == "connection_ack"
    query = "subscription { auditEvents { tenant seq action actor credential targetId } }"
    await socket.send(orjson.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}}).decode())
    return socket


async def test_nothing_handed_out_holds_a_secret(world, db_url, tmp_path, caplog):
    caplog.set_level(logging.INFO)  # what a server logs (DEBUG would show the driver's SQL)
    partner, cards = world.partner, world.cards
    auditor = await create_principal_with_token(world.sessions, tenant_path="cn/440000", role="auditor")
    socket = await _subscribe(partner.base, auditor.token)
    await asyncio.sleep(1)
    for service in ("password_change", "info_inquiry", "financial_activation"):
        await grant(
            world.sessions, service, tenant=GZ, outlet=HALL if service != "financial_activation" else ICBC
        )
    await until_permitted(partner, HALL, "password_change")
    card = cards["th"]
    # Accepted and refused calls, the numbers as variables and inline.
    await partner.call(HALL, STATUS, {"c": card.card_number, "i": card.id_number})
    changed = await partner.call(HALL, CHANGE, pin_change_input(card, DEFAULT_PIN, NEW_PIN, "secret-scan-1"))
    assert changed.get("data"), changed
    await partner.call(HALL, CHANGE, pin_change_input(card, WRONG_PIN, "147036", "secret-scan-2"))
    await partner.call(
        ICBC,
        FIN,
        {
            "i": {
                "cardSerial": card.card_serial,
                "idNumber": card.id_number,
                "bankCardNumber": card.bank_card_number,
                "idempotencyKey": "secret-scan-3",
            }
        },
    )
    inline = (
        f'{{ cardStatus(cardNumber: "{card.card_number}", idNumber: "{card.id_number}",'
        ' purpose: "password_reset") { status } }'
    )
    await partner.call(HALL, inline)
    await partner.call_with(
        "ssc_partner_not-a-real-key", STATUS, {"c": card.card_number, "i": card.id_number}
    )

    # What the subscription delivered.
    delivered = []
    try:
        while True:
            delivered.append(await asyncio.wait_for(socket.recv(), 3))
    except TimeoutError:
        pass
    finally:
        await socket.close()
    assert delivered, "the subscription delivered the run's events"

    # Everything handed out.
    signer = Signer(resolve_signing_key(get_settings()))
    export_jsonl(db_url, tmp_path / "trail.jsonl.gz", signer)
    export_table(db_url, tmp_path / "trail.csv", "csv")
    export_table(db_url, tmp_path / "trail.xlsx", "xlsx")
    headers = {"Authorization": f"Bearer {auditor.token}"}
    async with httpx.AsyncClient(timeout=30, headers=headers) as client:
        download = (
            await client.get(f"{partner.base}/reports/audit-events", params={"format": "csv"})
        ).content
        trail = (await client.post(f"{partner.base}/graphql", json={"query": EVENTS})).content
    with zipfile.ZipFile(tmp_path / "trail.xlsx") as book:
        xlsx = b"".join(book.read(n) for n in book.namelist())
    handed_out = {
        "subscription": "\n".join(m if isinstance(m, str) else m.decode() for m in delivered).encode(),
        "jsonl export": gzip.decompress((tmp_path / "trail.jsonl.gz").read_bytes()),
        "csv export": (tmp_path / "trail.csv").read_bytes(),
        "xlsx export": xlsx,
        "download": download,
        "auditEvents": trail,
        "server log": "\n".join(r.getMessage() + str(r.exc_text or "") for r in caplog.records).encode(),
    }
    # The run is there: the PIN change, the financial activation, and the refusals.
    for action in (b'"card.pin_change"', b'"card.financial_activation"', b'"card.status"'):
        assert action in handed_out["jsonl export"], action
    secrets = {auditor.token, *partner.keys.values(), NEW_PIN, WRONG_PIN, "147036"}
    for c in cards.values():
        secrets |= {c.id_number, c.bank_card_number}
    for where, content in handed_out.items():
        text = content.decode("utf-8", errors="replace")
        found = sorted(s for s in secrets if s in text)
        assert not found, (where, found)
