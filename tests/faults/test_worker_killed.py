"""SIGKILL on PostgreSQL: two `ssc serve` processes share one database under a load of
administrators' changes and partners' calls; one is killed while it is inside a writing transaction
(during the load, during a `bulkGrant`), and started again. So is `ssc cards import` in the middle
of its batches. Afterwards:

- every change a caller was told succeeded is in the database, with its audit event;
- nothing is applied by half: grants and their policy lines, outlets and their group lines, a bulk
  grant whole or not at all, a card import in whole batches;
- `ssc audit verify` finds every chain whole (no gap, no fork);
- both workers enforce the same policy, the one the database holds.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from app.ops.cards.imports.importer import PG_WRITERS
from app.ops.demo.generate import generate
from app.ops.demo.partner import partner_quick_start
from app.ops.partner_keys.keys import create_partner_key
from app.ops.principals.credentials import create_principal_with_token
from app.ops.tenants.apply import apply_tenant_files
from app.settings import Settings, resolve_keys
from app.store.crypto import FieldCipher
from app.store.db import make_async_engine, make_session_factory
from tests.faults.consistency import (
    audit_verify,
    named,
    projection_problems,
    query,
    unaudited,
    wait_for_writing_transaction,
)
from tests.faults.load import NANSHAN, Load, permissions
from tests.procsrv import PROJECT_ROOT, ServeProcess

KEYED = ("sz-hall-city", "sz-ns-yuehai", "sz-ns-hosp-nanshan")  # outlets with a partner key
LOAD_SECONDS = 2.0
SETTINGS = {
    "partner_rate_limit": "100000/second",
    "partner_rate_limit_max": "100000/second",
    "audit_checkpoint_seconds": "0",  # no background signing: a worker's writes are the load's
}


class World:
    def __init__(self, url: str, key_file: Path, token: str, partners: list) -> None:
        self.url, self.key_file, self.token, self.partners = url, key_file, token, partners

    def server(self, name: str) -> ServeProcess:
        """A worker whose connections are named `name` in pg_stat_activity."""
        return ServeProcess(named(self.url, name), self.key_file, **SETTINGS)


@pytest.fixture
async def world(pg_url, tmp_path, tenants_dir):
    key_file = tmp_path / "keys.env"
    engine = make_async_engine(pg_url)
    sessions = make_session_factory(engine)
    try:
        await apply_tenant_files(sessions, tenants_dir)
        admin = await create_principal_with_token(sessions, tenant_path="cn/440000/440300", role="city_admin")
        cipher = FieldCipher(*resolve_keys(Settings(database_url=pg_url, key_file=str(key_file))))
        partners = [await partner_quick_start(sessions, cipher, outlet) for outlet in KEYED]
    finally:
        await engine.dispose()
    return World(pg_url, key_file, admin.token, partners)


async def _keys_for(url: str, outlet_ids: list[str]) -> list[str]:
    """A partner key for each outlet (issued straight in the database, as an administrator would)."""
    engine = make_async_engine(url)
    try:
        async with make_session_factory(engine)() as session, session.begin():
            return [
                (await create_partner_key(session, outlet_id, days=1, actor="test")).key
                for outlet_id in outlet_ids
            ]
    finally:
        await engine.dispose()


def _same_policy_everywhere(bases: list[str], keys: list[str], revision: str) -> list[dict]:
    """Each key's permissions, asked of every worker once it holds `revision`: the same everywhere."""
    seen = []
    for key in keys:
        answers = [permissions(base, key, revision) for base in bases]
        assert all(a == answers[0] for a in answers), f"workers disagree: {answers}"
        seen.append(answers[0])
    return seen


def _active_grants(url: str, outlet_id: str) -> list[str]:
    rows = query(url, "select id from \"grant\" where outlet_id = %s and state = 'active'", outlet_id)
    return sorted(str(i) for (i,) in rows)


async def test_a_worker_killed_mid_write_loses_nothing_it_acknowledged(world):
    killed, survivor = world.server("ssc-killed"), world.server("ssc-survivor")
    try:
        killed.start()
        survivor.start()
        load = Load([killed.base, survivor.base], world.token, world.partners, prefix="kill")
        load.start()
        time.sleep(LOAD_SECONDS / 2)
        # Inside a transaction that has written and not committed: the database must undo it.
        wait_for_writing_transaction(world.url, "ssc-killed")
        killed.kill()
        killed_at = time.monotonic()
        time.sleep(0.5)  # the load goes on against a dead worker and a live one
        restarted_in = killed.start()
        time.sleep(LOAD_SECONDS / 2)
        told = load.stop()
        # It came back from its policy snapshot (app/authz/snapshot.py) and the log after it.
        assert "policy read from snapshot" in killed.log.read_text(errors="replace")
        print(
            f"killed a worker mid-write; back in {restarted_in:.1f} s "
            f"(down {time.monotonic() - killed_at:.1f} s in all); "
            f"{len(told.acknowledged)} calls acknowledged, outcomes {dict(told.codes)}"
        )
        assert not told.internal, told.internal[:5]
        assert told.codes["unanswered"] >= 1, "no call was cut by the kill: it tested nothing"
        assert len(told.outlets) >= 10 and len(told.grants) >= 10, "too little load to say anything"

        assert not (missing := unaudited(world.url, told.acknowledged)), (
            f"{len(missing)} acknowledged calls lost"
        )
        stored = {i for (i,) in query(world.url, "select id from outlet where id like 'kill-%%'")}
        assert set(told.outlets) <= stored
        states = dict(
            query(world.url, 'select id::text, state from "grant" where document_ref like %s', "%9号")
        )
        for grant_id, state in told.grants.items():
            # A revocation cut by the kill may or may not have happened; the rest is as told.
            assert states[grant_id] == state or (
                grant_id in told.revokes_tried and states[grant_id] == "revoked"
            )
        assert not projection_problems(world.url)
        print(audit_verify(world.url, world.key_file))

        sample = told.outlets[:: max(1, len(told.outlets) // 8)]
        keys = [p.key.key for p in world.partners] + await _keys_for(world.url, sample)
        seen = _same_policy_everywhere([killed.base, survivor.base], keys, told.revision)
        for outlet_id, enforced in zip(sample, seen[len(world.partners) :], strict=True):
            assert enforced.get("info_inquiry", []) == _active_grants(world.url, outlet_id)
    finally:
        killed.stop()
        survivor.stop()


IMPORT_CSV_ROWS = 8_000
BULK = """mutation($i: BulkGrantInput!) { bulkGrant(input: $i) { revision count state } }"""


def _outlets_csv(count: int) -> str:
    rows = ["id,tenant,kind,name"] + [
        f"bulk-{n:05d},{NANSHAN},hrss_hall,批量测试网点{n}" for n in range(count)
    ]
    return "\n".join(rows) + "\n"


def _bulk_grants(url: str, document_ref: str) -> int:
    return query(url, 'select count(*) from "grant" where document_ref = %s', document_ref)[0][0]


async def test_a_worker_killed_mid_bulk_grant_grants_all_or_none(world):
    killed, survivor = world.server("ssc-killed"), world.server("ssc-survivor")
    auth = {"authorization": f"Bearer {world.token}"}
    bulk = {
        "tenant": NANSHAN,
        "service": "info_inquiry",
        "validFrom": "2026-01-01T00:00:00Z",
        "documentRef": "深人社函〔2026〕88号",
        "selector": {"under": NANSHAN, "kind": "hrss_hall", "search": "批量测试"},
    }
    try:
        killed.start()
        survivor.start()
        made = httpx.post(
            f"{survivor.base}/graphql",
            json={
                "query": "mutation($i: ImportOutletsInput!) { importOutlets(input: $i) { imported } }",
                "variables": {"i": {"tenant": NANSHAN, "csv": _outlets_csv(IMPORT_CSV_ROWS)}},
            },
            headers=auth,
            timeout=120,
        ).json()
        assert made["data"]["importOutlets"]["imported"] == IMPORT_CSV_ROWS, made
        keys = await _keys_for(world.url, ["bulk-00000", "bulk-04000", f"bulk-{IMPORT_CSV_ROWS - 1:05d}"])
        # Partners and administrators keep calling the survivor; the killed worker runs only the bulk
        # grant, so its one writing transaction is the bulk grant's.
        load = Load([survivor.base], world.token, world.partners, prefix="bulk")
        load.start(administrators=1, partners=3)
        cut = []

        def send() -> None:
            try:
                cut.append(
                    httpx.post(
                        f"{killed.base}/graphql",
                        json={"query": BULK, "variables": {"i": bulk}},
                        headers=auth,
                        timeout=120,
                    ).json()
                )
            except httpx.TransportError:
                cut.append(None)

        sender = threading.Thread(target=send)
        sender.start()
        waited = wait_for_writing_transaction(world.url, "ssc-killed")
        killed.kill()
        sender.join(timeout=30)
        restarted_in = killed.start()
        told = load.stop()
        granted = _bulk_grants(world.url, bulk["documentRef"])
        print(
            f"bulk grant killed {waited:.2f} s after it was sent: {granted} grants stored; "
            f"worker back in {restarted_in:.1f} s"
        )
        assert cut == [None], f"the bulk grant was answered although its worker was killed: {cut}"
        assert granted in (0, IMPORT_CSV_ROWS), f"half a bulk grant: {granted} of {IMPORT_CSV_ROWS}"
        assert not projection_problems(world.url)
        assert not told.internal and not unaudited(world.url, told.acknowledged)

        # The administrator sends it again: whole, and enforced by both workers at once.
        again = httpx.post(
            f"{killed.base}/graphql",
            json={"query": BULK, "variables": {"i": bulk}},
            headers=auth,
            timeout=120,
        ).json()
        if granted == 0:
            assert again["data"]["bulkGrant"]["count"] == IMPORT_CSV_ROWS, again
            revision = again["data"]["bulkGrant"]["revision"]
        else:
            revision = str(query(world.url, "select max(id) from policy_change")[0][0])
        assert _bulk_grants(world.url, bulk["documentRef"]) == IMPORT_CSV_ROWS
        assert not projection_problems(world.url)
        for enforced in _same_policy_everywhere([killed.base, survivor.base], keys, revision):
            assert len(enforced["info_inquiry"]) == 1
        print(audit_verify(world.url, world.key_file))
    finally:
        killed.stop()
        survivor.stop()


CARDS = 12_000
CARD_BATCH = 1_000


def _import(url: str, key_file: Path, path: Path) -> subprocess.Popen:
    env = {**os.environ, "SSC_DATABASE_URL": url, "SSC_KEY_FILE": str(key_file)}
    command = [
        str(Path(sys.executable).with_name("ssc")),
        "cards",
        "import",
        str(path),
        "--batch",
        str(CARD_BATCH),
    ]
    return subprocess.Popen(
        command, env=env, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _stored_serials(url: str) -> list[str]:
    return [s for (s,) in query(url, "select card_serial from card")]


async def test_a_card_import_killed_mid_batch_keeps_whole_batches(world, tmp_path):
    path = tmp_path / "cards.csv"
    engine = make_async_engine(world.url)
    try:
        await generate(
            make_session_factory(engine),
            FieldCipher(b"k" * 32, b"l" * 32),
            cards=CARDS,
            outlets=0,
            seed=5,
            csv_path=path,
        )
    finally:
        await engine.dispose()
    with path.open(encoding="utf-8") as fh:
        serials = [row["card_serial"] for row in csv.DictReader(fh)]
    before = set(_stored_serials(world.url))

    importing = _import(named(world.url, "ssc-import"), world.key_file, path)
    try:
        # Past a few committed batches, inside the next one.
        deadline = time.monotonic() + 60
        while query(world.url, "select count(*) from audit_event where action = 'cards.import'")[0][0] < 2:
            assert importing.poll() is None and time.monotonic() < deadline, importing.communicate()
            time.sleep(0.01)
        wait_for_writing_transaction(world.url, "ssc-import")
        importing.kill()
        importing.wait()
    finally:
        if importing.poll() is None:
            importing.kill()
    # In the order of the file: the batches written at once commit in either order.
    batches = sorted(
        (
            json.loads(d)
            for (d,) in query(world.url, "select detail from audit_event where action = 'cards.import'")
        ),
        key=lambda batch: batch["lines"],
    )
    stored = set(_stored_serials(world.url)) - before
    print(f"import killed after {len(batches)} batches: {len(stored)} cards stored")
    assert 2 <= len(batches) < CARDS // CARD_BATCH
    assert len(stored) == sum(b["cards"] for b in batches) == len(batches) * CARD_BATCH
    # Whole batches of the file, each as its event says.
    numbers = [(batch["lines"][0] - 2) // CARD_BATCH for batch in batches]
    for n, batch in zip(numbers, batches, strict=True):
        assert batch["lines"] == [2 + n * CARD_BATCH, 1 + (n + 1) * CARD_BATCH]
    assert stored == {serial for n in numbers for serial in serials[n * CARD_BATCH : (n + 1) * CARD_BATCH]}
    # A batch is begun only once the batch PG_WRITERS before it is in: all before the last ones
    # written at once are in (the one ahead of the last may not be).
    assert set(range(numbers[-1] - PG_WRITERS + 1)) <= set(numbers), numbers
    print(audit_verify(world.url, world.key_file))

    # The operator runs the same import again: the batches already in are refused whole, the rest go in.
    again = _import(world.url, world.key_file, path)
    out, err = again.communicate(timeout=120)
    assert again.returncode == 1, out + err  # the batches already stored are reported
    assert f"{CARDS - len(stored)} cards imported" in out, out
    after = _stored_serials(world.url)
    assert len(after) == len(set(after)) and set(serials) <= set(after)
    print(audit_verify(world.url, world.key_file))
