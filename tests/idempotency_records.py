"""Idempotency records of given ages, for the purge tests of tests/ops and tests/cli."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import select

from app.store.tables import IdempotencyRecord

OUTLETS = ("gz-th-hosp-tianhe", "gz-th-pharm-dasenlin", "gz-th-wushan")
HOUR = timedelta(hours=1)


async def add_records(sessions, ages: dict[tuple[str, str], timedelta]) -> None:
    now = datetime.now(UTC)
    async with sessions() as session, session.begin():
        for (outlet, key), age in ages.items():
            session.add(
                IdempotencyRecord(
                    outlet_id=outlet,
                    key=key,
                    operation="card.activate",
                    request_hash="0" * 64,
                    result="{}",
                    created_at=now - age,
                )
            )


async def remaining(sessions) -> set[tuple[str, str]]:
    async with sessions() as session:
        return {(r.outlet_id, r.key) for r in (await session.exec(select(IdempotencyRecord))).all()}
