"""`ssc audit archive`: old events leave the database for a sealed file, the chains verify on across
the boundary, the file verifies on its own, and nothing is removed inside the retention period or
when anything fails."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from app.ops.compliance import archive as archiving
from app.ops.compliance.archive import ArchiveRefused, archive_before
from app.ops.compliance.checkpoints import sign_heads
from app.ops.compliance.verify import verify_file
from app.store.db import make_sync_engine
from tests.ops.compliance.test_verify import GZ, SIGNER, SZ, TH, tamper, verify, write_events

LATER = timedelta(days=400)


def stored(db_url: str) -> dict[str, tuple[int, int]]:
    """Per chain, its first and last stored sequence numbers."""
    engine = make_sync_engine(db_url)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT tenant, min(seq), max(seq) FROM audit_event GROUP BY tenant"))
        found = {tenant: (first, last) for tenant, first, last in rows}
    engine.dispose()
    return found


def archive(db_url, tmp_path, before: datetime, **kw):
    return archive_before(
        db_url, before, SIGNER, tmp_path / "archive", retention_days=365, now=before + LATER, **kw
    )


def files(tmp_path) -> list[str]:
    folder = tmp_path / "archive"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


async def test_old_events_move_to_a_file_and_the_chains_verify_across_the_boundary(
    db_url, sessions, tmp_path
):
    await write_events(sessions, 10)
    cut = datetime.now(UTC)
    await write_events(sessions, 5)
    await sign_heads(sessions, SIGNER)

    done = archive(db_url, tmp_path, cut)
    assert (done.events, done.chains) == (30, 3) and done.path is not None and done.path.suffix == ".gz"
    assert stored(db_url) == {GZ: (11, 15), SZ: (11, 15), TH: (11, 15)}
    # The database goes on from the signed boundary; the file verifies on its own.
    found = verify(db_url)
    assert found.ok and found.events == 15, (found.breaks, found.problems)
    on_file = verify_file(done.path, public_keys=[SIGNER.public_key])
    assert on_file.ok and on_file.events == 30 and on_file.tenants == 3
    # New events follow the remaining ones, and a second archive takes the next stretch.
    await write_events(sessions, 3)
    assert verify(db_url).ok
    second = archive(db_url, tmp_path, datetime.now(UTC))
    assert second.events == 3 * 7  # all but each chain's last event
    assert stored(db_url) == {GZ: (18, 18), SZ: (18, 18), TH: (18, 18)}
    found = verify(db_url)
    assert found.ok and found.events == 3, (found.breaks, found.problems)


async def test_the_last_event_of_a_chain_stays(db_url, sessions, tmp_path):
    await write_events(sessions, 4)
    done = archive(db_url, tmp_path, datetime.now(UTC))
    assert done.events == 9 and stored(db_url) == {GZ: (4, 4), SZ: (4, 4), TH: (4, 4)}
    # Nothing older is left: a second run archives nothing and writes no file.
    again = archive(db_url, tmp_path, datetime.now(UTC))
    assert again.path is None and again.events == 0
    assert files(tmp_path) == [done.path.name]


async def test_nothing_younger_than_the_retention_period_is_archived(db_url, sessions, tmp_path):
    await write_events(sessions, 4)
    now = datetime.now(UTC)
    for days in (0, 179, 364):
        with pytest.raises(ArchiveRefused, match="kept 365 days"):
            archive_before(
                db_url, now - timedelta(days=days), SIGNER, tmp_path / "archive", retention_days=365, now=now
            )
    # A retention set lower than the law's six months is still six months.
    with pytest.raises(ArchiveRefused, match="kept 180 days"):
        archive_before(
            db_url, now - timedelta(days=100), SIGNER, tmp_path / "archive", retention_days=30, now=now
        )
    assert stored(db_url) == {GZ: (1, 4), SZ: (1, 4), TH: (1, 4)} and files(tmp_path) == []


async def test_a_failure_midway_removes_nothing_and_leaves_no_file(db_url, sessions, tmp_path, monkeypatch):
    await write_events(sessions, 6)
    real = archiving.events_through

    def failing(connection, tenant, seq):
        yield from real(connection, tenant, seq)
        if tenant == SZ:
            raise OSError("disk full")

    monkeypatch.setattr(archiving, "events_through", failing)
    with pytest.raises(OSError, match="disk full"):
        archive(db_url, tmp_path, datetime.now(UTC))
    assert stored(db_url) == {GZ: (1, 6), SZ: (1, 6), TH: (1, 6)} and files(tmp_path) == []
    assert verify(db_url).ok


async def test_a_forged_boundary_is_found(db_url, sessions, tmp_path):
    await write_events(sessions, 6)
    archive(db_url, tmp_path, datetime.now(UTC))
    # Someone moves Shenzhen's boundary to hide that its events were rewritten: its checkpoint's
    # signature no longer covers the row.
    tamper(db_url, f"UPDATE audit_archive SET hash = '{'0' * 64}' WHERE tenant = '{SZ}'")
    found = verify(db_url)
    assert not found.ok
    assert any(f"archive boundary of {SZ}" in p for p in found.problems), found.problems
