"""200 grant mutations at once over three departments: 200 events, each chain numbered without a gap
or a duplicate, and every chain verifies (on SQLite and on PostgreSQL, with the suite's database)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from sqlmodel import select

from app.ops.compliance.verify import verify_database
from app.store.tables import AuditEvent
from tests.api.grant_helpers import GRANT_SERVICE

CALLERS = {
    "gz_admin": ("cn/440000/440100", "gz-th-wushan"),
    "sz_admin": ("cn/440000/440300", "sz-ft-huafu"),
    "th_admin": ("cn/440000/440100/440106", "gz-th-shipai"),
}
CALLS = 200


async def test_concurrent_grants_leave_whole_chains(api, sessions, db_url):
    start = datetime(2026, 1, 1, tzinfo=UTC)

    async def one(n: int) -> dict:
        who = list(CALLERS)[n % 3]
        tenant, outlet = CALLERS[who]
        variables = {
            "i": {
                "tenant": tenant,
                "outletId": outlet,
                "service": "info_inquiry",
                "validFrom": (start + timedelta(minutes=n)).isoformat(),
                "documentRef": f"并发〔2026〕{n}号",
            }
        }
        return await api.gql(GRANT_SERVICE, variables, who=who)

    answers = await asyncio.gather(*(one(n) for n in range(CALLS)))
    assert all(a.get("data") for a in answers), [a for a in answers if not a.get("data")][:3]
    async with sessions() as session:
        rows = (
            await session.exec(
                select(AuditEvent.tenant, AuditEvent.seq).where(AuditEvent.action == "grant.create")
            )
        ).all()
        every = (await session.exec(select(AuditEvent.tenant, AuditEvent.seq))).all()
    assert len(rows) == CALLS
    by_tenant: dict[str, list[int]] = defaultdict(list)
    for tenant, seq in every:
        by_tenant[tenant].append(seq)
    for tenant, seqs in by_tenant.items():
        assert sorted(seqs) == list(range(1, len(seqs) + 1)), tenant  # no gap, no duplicate
    assert {t for t, _ in rows} == {tenant for tenant, _ in CALLERS.values()}
    found = verify_database(db_url)
    assert not found.breaks and found.events == len(every)
