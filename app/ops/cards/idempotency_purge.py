"""Purging old idempotency records (`ssc idempotency purge`).

A record keeps a partner mutation's first answer under (outlet, key), so a retry is answered without
acting again (app/ops/cards/idempotency.py). Past the retention (setting `idempotency_retention_hours`) the
records go: they hold masked card data, and the table would grow with every call for ever. A retry
with a purged key is a new call and acts again.

Batches: old records are deleted in chunks of BATCH_SIZE in primary-key order, each chunk in a
transaction of its own. One DELETE over a large table would, for as long as it runs, hold SQLite's
only write lock (every partner mutation and audit write waits behind it) or keep a long PostgreSQL
transaction with all its row locks and WAL; a chunk takes milliseconds, and a run that is interrupted
keeps what it committed, so the next run simply carries on. Each chunk starts after the last key of
the one before (keyset), so a run reads the table once even though `created_at` has no index. The
run's audit event is committed together with its last chunk.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, tuple_
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.domain.regions import ROOT
from app.store.audit import append_event
from app.store.tables import IdempotencyRecord

BATCH_SIZE = 10_000
ACTOR = "cli:idempotency-purge"

Key = tuple[str, str]  # (outlet_id, key): the primary key
_pk = tuple_(IdempotencyRecord.outlet_id, IdempotencyRecord.key)


def _old(cutoff: datetime, after: Key | None) -> list:
    """Records created before `cutoff` whose primary key follows `after`."""
    conditions = [IdempotencyRecord.created_at < cutoff]
    if after is not None:
        conditions.append(_pk > tuple_(*after))
    return conditions


async def _chunk_end(session: AsyncSession, cutoff: datetime, after: Key | None, size: int) -> Key | None:
    """The primary key of the `size`-th old record after `after`; None when fewer are left."""
    row = (
        await session.exec(
            select(IdempotencyRecord.outlet_id, IdempotencyRecord.key)
            .where(*_old(cutoff, after))
            .order_by(IdempotencyRecord.outlet_id, IdempotencyRecord.key)
            .offset(size - 1)
            .limit(1)
        )
    ).first()
    return (row[0], row[1]) if row else None


async def purge_idempotency_records(
    sessions: async_sessionmaker[AsyncSession],
    *,
    older_than: datetime,
    batch_size: int = BATCH_SIZE,
    actor: str = ACTOR,
) -> int:
    """Delete the idempotency records created before `older_than` (a time with its zone), chunk by
    chunk; return how many went. One audit event per run, in the national chain."""
    deleted, batches, after = 0, 0, None
    while True:
        async with sessions() as session, session.begin():
            end = await _chunk_end(session, older_than, after, batch_size)
            conditions = _old(older_than, after)
            if end is not None:
                conditions.append(_pk <= tuple_(*end))
            result = await session.exec(
                delete(IdempotencyRecord).where(*conditions).execution_options(synchronize_session=False)
            )
            deleted += result.rowcount
            batches += 1
            if end is None:  # the last chunk: everything old that was left
                await append_event(
                    session,
                    tenant=ROOT,
                    actor=actor,
                    action="idempotency.purge",
                    target_type="table",
                    target_id=IdempotencyRecord.__tablename__,
                    detail={
                        "deleted": deleted,
                        "older_than": older_than.astimezone(UTC).isoformat(),
                        "batches": batches,
                    },
                )
                return deleted
        after = end
