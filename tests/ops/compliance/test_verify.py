"""`ssc audit verify` finds exactly the first broken event of a chain, whatever was done to it: an
edited field, a deleted event, two events swapped, an event inserted, the tail cut after a signed
checkpoint, the whole chain re-forged; on SQLite and on PostgreSQL (where the attacker first has to
get past the trigger that refuses changes to audit events)."""

from __future__ import annotations

import secrets
import tracemalloc

import pytest
from sqlalchemy import text

from app.domain.audit_chain import chain_hash
from app.ops.compliance import verify as verify_module
from app.ops.compliance.checkpoints import Signer, sign_heads
from app.ops.compliance.verify import verify_database
from app.store.audit import append_events, event_content
from app.store.db import make_sync_engine
from app.store.tables import AuditEvent

GZ = "cn/440000/440100"
SZ = "cn/440000/440300"
TH = "cn/440000/440100/440106"
SIGNER = Signer(secrets.token_bytes(32))


async def write_events(sessions, per_tenant: int, tenants=(GZ, SZ, TH)) -> None:
    """`per_tenant` events in each chain, interleaved as real traffic is, with varied text."""
    events = [
        (
            tenant,
            {
                "actor": f"person:admin.{n % 7}",
                "credential": f"token:{n}" if n % 3 else None,
                "action": "grant.create",
                "target_type": "grant",
                "target_id": str(n),
                "detail": {"after": {"state": "active", "n": n}, "why": "粤人社函〔2026〕8号 «quoted»"},
                "reason": None if n % 5 else "NO_GRANT",
                "decision": None if n % 5 else "deny",
                "request_id": secrets.token_hex(8),
            },
        )
        for n in range(per_tenant)
        for tenant in tenants
    ]
    for start in range(0, len(events), 5_000):
        async with sessions() as session, session.begin():
            await append_events(session, events[start : start + 5_000])


def tamper(db_url: str, *statements: str) -> None:
    """What someone with write access to the database does. On PostgreSQL the audit trigger refuses
    it, so they switch triggers off for their transaction first, as a superuser can."""
    engine = make_sync_engine(db_url)
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("set local session_replication_role = replica"))
        for statement in statements:
            connection.execute(text(statement))
    engine.dispose()


def verify(db_url, **kw):
    return verify_database(db_url, public_keys=[SIGNER.public_key], **kw)


def only_break(found) -> tuple[str, int, str]:
    assert len(found.breaks) == 1, found.breaks
    b = found.breaks[0]
    return b.tenant, b.seq, b.problem


async def test_an_untouched_trail_verifies(db_url, sessions):
    await write_events(sessions, 40)
    await sign_heads(sessions, SIGNER)
    found = verify(db_url)
    assert found.ok and found.events == 120 and found.tenants == 3 and found.unsigned == {}
    assert found.checkpoint is not None and {h.tenant for h in found.checkpoint.heads} == {GZ, SZ, TH}
    # Only a subtree: Guangzhou and Tianhe below it, not Shenzhen.
    assert verify(db_url, under=GZ).events == 80
    await write_events(sessions, 2, tenants=(SZ,))
    assert verify(db_url).unsigned == {SZ: 2}


async def test_a_chain_stored_out_of_written_order_is_walked_in_sequence(db_url, sessions):
    """Verification reads the table in the order it was written and walks in (tenant, seq) order only
    the chains that do not come in sequence that way: rows moved (a restore that renumbered them) are
    no break, and a break among them is still found at its event."""
    await write_events(sessions, 30)
    tamper(db_url, f"update audit_event set id = id + 100000 where tenant = '{GZ}' and seq <= 5")
    found = verify(db_url)
    assert found.ok and found.events == 90 and found.tenants == 3
    tamper(db_url, f"update audit_event set target_id = '77' where tenant = '{GZ}' and seq = 3")
    assert only_break(verify(db_url)) == (GZ, 3, "EDITED")


async def test_parts_read_by_several_processes_give_the_same_verdicts(db_url, sessions, monkeypatch):
    """A large trail is read in parts by several processes, each part's runs of a chain stitched to
    the next: the verdicts are those of one reader, breaks at a part's edge included."""
    await write_events(sessions, 40)
    await sign_heads(sessions, SIGNER)
    monkeypatch.setattr(verify_module, "_EVENTS_PER_JOB", 7)  # parts of ~10 events, chains across them
    whole = verify(db_url, jobs=3)
    assert whole.ok and whole.events == 120 and whole.tenants == 3 and whole.unsigned == {}
    tamper(
        db_url,
        f"update audit_event set actor = 'person:someone.else' where tenant = '{GZ}' and seq = 17",
        f"delete from audit_event where tenant = '{SZ}' and seq = 30",
        f"delete from audit_event where tenant = '{TH}' and seq > 36",
    )
    one, three = verify(db_url), verify(db_url, jobs=3)
    found = [(b.tenant, b.seq, b.problem) for b in three.breaks]
    assert found == [(b.tenant, b.seq, b.problem) for b in one.breaks]
    assert found == [(GZ, 17, "EDITED"), (TH, 37, "TRUNCATED"), (SZ, 30, "MISSING")]
    assert three.events == one.events == 115


async def test_an_edited_field_is_found_at_its_event(db_url, sessions):
    await write_events(sessions, 30)
    tamper(db_url, f"update audit_event set actor = 'person:someone.else' where tenant = '{GZ}' and seq = 17")
    assert only_break(verify(db_url)) == (GZ, 17, "EDITED")


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("detail", """'{"after":{"state":"revoked"}}'"""),
        ("detail", "'not json at all'"),
        ("at", "'2026-01-01 00:00:00.000000'"),
        ("credential", "'token:999'"),
        ("decision", "'allow'"),
        ("target_id", "'9999'"),
    ],
)
async def test_every_hashed_column_is_covered(db_url, sessions, column, value):
    await write_events(sessions, 12)
    tamper(db_url, f"update audit_event set {column} = {value} where tenant = '{SZ}' and seq = 5")
    assert only_break(verify(db_url)) == (SZ, 5, "EDITED")


async def test_a_deleted_event_is_found(db_url, sessions):
    await write_events(sessions, 30)
    tamper(db_url, f"delete from audit_event where tenant = '{TH}' and seq = 9")
    tenant, seq, problem = only_break(verify(db_url))
    assert (tenant, seq, problem) == (TH, 9, "MISSING")


async def test_swapped_events_are_found(db_url, sessions):
    await write_events(sessions, 30)
    tamper(
        db_url,
        f"update audit_event set seq = -1 where tenant = '{GZ}' and seq = 11",
        f"update audit_event set seq = 11 where tenant = '{GZ}' and seq = 12",
        f"update audit_event set seq = 12 where tenant = '{GZ}' and seq = -1",
    )
    assert only_break(verify(db_url)) == (GZ, 11, "EDITED")


async def test_an_inserted_event_is_found(db_url, sessions):
    """An event slipped in at 8 (the later ones renumbered), made from a real one without its key."""
    await write_events(sessions, 30)
    shift = [
        f"update audit_event set seq = seq + 1 where tenant = '{SZ}' and seq = {n}" for n in range(30, 7, -1)
    ]
    copy = (
        "insert into audit_event (tenant, seq, prev_hash, hash, at, actor, credential, action, target_type,"
        " target_id, decision, reason, detail, request_id)"
        " select tenant, 8, hash, hash, at, 'person:intruder', credential, action, target_type, target_id,"
        f" decision, reason, detail, request_id from audit_event where tenant = '{SZ}' and seq = 7"
    )
    tamper(db_url, *shift, copy)
    assert only_break(verify(db_url)) == (SZ, 8, "EDITED")


async def test_a_tail_cut_after_a_signed_checkpoint_is_found(db_url, sessions):
    await write_events(sessions, 30)
    await sign_heads(sessions, SIGNER)
    tamper(db_url, f"delete from audit_event where tenant = '{GZ}' and seq >= 26")
    assert only_break(verify(db_url)) == (GZ, 26, "TRUNCATED")
    # Without a signature nothing tells a short chain from a cut one: the cut is only visible signed.
    assert verify(db_url, anchors=None, checkpoint_id=None, under=SZ).ok


async def test_a_reforged_chain_verifies_alone_but_not_against_its_checkpoint(db_url, sessions):
    """A writer to the database renumbers and re-hashes a whole chain, dropping an event and
    changing an actor: every link holds, and only the signed head gives it away."""
    await write_events(sessions, 20)
    await sign_heads(sessions, SIGNER)
    engine = make_sync_engine(db_url)
    with engine.connect() as connection:
        rows = (
            connection.execute(text(f"select id from audit_event where tenant = '{GZ}' order by seq"))
            .scalars()
            .all()
        )
    engine.dispose()
    async with sessions() as session:
        events = [await session.get(AuditEvent, i) for i in rows]
    forged, prev = [], "0" * 64
    for event in [e for e in events if e.seq != 4]:
        event.seq = len(forged) + 1
        event.actor = "person:forger" if event.seq == 9 else event.actor
        event.prev_hash = prev
        event.hash = prev = chain_hash(prev, event_content(event))
        forged.append(event)
    engine = make_sync_engine(db_url)
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("set local session_replication_role = replica"))
        connection.execute(text(f"delete from audit_event where tenant = '{GZ}'"))
        columns = [c.name for c in AuditEvent.__table__.columns if c.name != "id"]
        connection.execute(
            AuditEvent.__table__.insert(), [{c: getattr(e, c) for c in columns} for e in forged]
        )
    engine.dispose()
    alone = verify_database(db_url, public_keys=None, checkpoint_id=None, anchors=None)
    assert alone.breaks == [] and alone.problems[0].startswith("the checkpoint: no public key")
    assert only_break(verify(db_url)) == (GZ, 20, "TRUNCATED")


async def test_a_checkpoint_whose_signature_fails_is_reported(db_url, sessions):
    await write_events(sessions, 5)
    await sign_heads(sessions, SIGNER)
    tamper(db_url, f"update audit_checkpoint set heads = replace(heads, '{SZ}', '{SZ}1')")
    found = verify(db_url)
    assert not found.ok and found.breaks == []
    assert found.problems == ["the checkpoint: the checkpoint's signature does not hold: it was altered"]
    other = Signer(secrets.token_bytes(32))
    assert "was signed by key" in verify_database(db_url, public_keys=[other.public_key]).problems[0]


async def test_memory_stays_flat_whatever_the_number_of_events(db_url, sessions):
    """Events stream in batches of 10,000: past one batch, more events cost no more memory."""
    await write_events(sessions, 4_000)
    tracemalloc.start()
    verify(db_url)
    small = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    await write_events(sessions, 12_000)
    tracemalloc.start()
    found = verify(db_url)
    large = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert found.ok and found.events == 48_000
    assert large < small * 1.3, (small, large)  # four times the events, not four times the memory
