"""`ssc audit archive --before DATE`: move the events older than the retention period to a file.

The events of each chain written before DATE go, in one transaction, to a compressed JSONL file in
the export layout (so `ssc audit verify --file` checks it on its own), sealed by an `archive`
checkpoint over each chain's last archived event. That checkpoint is also kept in the database with
an `audit_archive` row per chain: the boundary from which `ssc audit verify` goes on, since the
first remaining event names the archived one's hash. If anything fails, nothing is removed.

The last event of a chain is never archived, even when it is older than DATE: new events follow it
(the writers read the chain's head from the table), so the chain stays one chain.

This is the only code that removes audit events; on PostgreSQL a trigger refuses it to any other
statement (migration 0005), and this transaction says who it is with `ssc.audit_archiving`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Connection, text

from app.domain.audit_chain import event_time_text
from app.ops.compliance.checkpoints import Signer, stored_row
from app.ops.compliance.exports import write_sealed, writer
from app.store.audit_read import events_through
from app.store.db import make_sync_engine
from app.store.tables import AuditArchive

# Cybersecurity Law art. 21: network logs are kept for no less than six months.
MIN_RETENTION_DAYS = 180


class ArchiveRefused(ValueError):
    """An archive that would remove events the retention period still keeps."""


@dataclass(frozen=True)
class Archived:
    events: int
    chains: int
    path: Path | None  # None: nothing was old enough
    checkpoint_id: int | None


def _boundaries(connection: Connection, before: datetime) -> dict[str, int]:
    """Per chain, the last event to archive: the one before the first event at or after `before`,
    and never the chain's last event."""
    rows = connection.execute(
        text(
            "SELECT tenant, min(seq) AS first, max(seq) AS last, "
            "min(CASE WHEN at >= :before THEN seq END) AS first_kept FROM audit_event GROUP BY tenant"
        ),
        {"before": before.astimezone(UTC).replace(tzinfo=None)},
    ).all()
    through = {}
    for tenant, first, last, first_kept in rows:
        end = min(last - 1, (first_kept - 1) if first_kept is not None else last)
        if end >= first:
            through[tenant] = end
    return through


def _take_lock(connection: Connection) -> None:
    # One archive or checkpoint at a time; on SQLite also the writers' lock, so the heads stay put.
    if connection.dialect.name == "postgresql":
        connection.execute(text("select pg_advisory_xact_lock(hashtext('audit:checkpoint'))"))
        connection.execute(text("set local ssc.audit_archiving = 'on'"))
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def archive_before(
    url: str,
    before: datetime,
    signer: Signer,
    directory: Path,
    *,
    retention_days: int,
    now: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> Archived:
    """Archive every chain's events written before `before` into a file in `directory`."""
    now = now or datetime.now(UTC)
    keep_from = now - timedelta(days=max(retention_days, MIN_RETENTION_DAYS))
    if before > keep_from:
        raise ArchiveRefused(
            f"events are kept {max(retention_days, MIN_RETENTION_DAYS)} days (SSC_AUDIT_RETENTION_DAYS): "
            f"only events before {event_time_text(keep_from)} may be archived"
        )
    path = directory / f"audit-before-{before.astimezone(UTC):%Y%m%dT%H%M%SZ}-{now:%Y%m%dT%H%M%SZ}.jsonl.gz"
    engine = make_sync_engine(url)
    try:
        with engine.connect() as connection:
            _take_lock(connection)
            through = _boundaries(connection, before)
            if not through:
                connection.rollback()
                return Archived(0, 0, None, None)

            def batches() -> Iterator[list[dict]]:
                for tenant in sorted(through):
                    yield from events_through(connection, tenant, through[tenant])

            partial = path.with_suffix(".part")
            try:
                with writer(partial) as out:
                    header = {
                        "archive": True,
                        "before": event_time_text(before),
                        "archived_at": event_time_text(now),
                    }
                    written = write_sealed(out, header, batches(), signer, "archive", progress)
                with partial.open("rb") as done:
                    os.fsync(done.fileno())  # on disk before the events leave the database
                assert written.seal is not None
                checkpoint_id = stored_row(connection, written.seal, _max_event_id(connection))
                connection.execute(
                    AuditArchive.__table__.insert(),
                    [
                        {
                            "tenant": tenant,
                            "seq": head.seq,
                            "hash": head.hash,
                            "checkpoint_id": checkpoint_id,
                            "file": path.name,
                            "events": head.seq - written.firsts[tenant].seq,
                            "archived_at": now,
                        }
                        for tenant, head in written.lasts.items()
                    ],
                )
                for tenant, seq in through.items():
                    connection.execute(
                        text("DELETE FROM audit_event WHERE tenant = :t AND seq <= :s"),
                        {"t": tenant, "s": seq},
                    )
                os.replace(partial, path)
                connection.commit()
            except BaseException:
                connection.rollback()
                for leftover in (partial, path):
                    leftover.unlink(missing_ok=True)
                raise
    finally:
        engine.dispose()
    return Archived(written.events, len(written.lasts), path, checkpoint_id)


def _max_event_id(connection: Connection) -> int:
    return connection.execute(text("SELECT coalesce(max(id), 0) FROM audit_event")).scalar_one()
