"""The overview's figures: decisions of the last 30 days by result and reason (older ones and other
provinces' left out), activated cards by channel in the area, grants in force per department below."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlmodel import select

from app.ops.tenants.dashboard import dashboard
from app.store.audit import append_event
from app.store.tables import Card, Tenant


async def test_decisions_and_activations_counted_for_the_area(auditor, sessions):
    now = datetime.now(UTC)
    decided = [
        ("cn/440000/440300/440305", "allow", None, now),
        ("cn/440000/440300/440305", "allow", None, now - timedelta(days=29)),
        ("cn/440000/440100", "deny", "NO_GRANT", now),
        ("cn/440000/440100", "deny", "ABOVE_CEILING", now),
        ("cn/440000/440100", "deny", "NO_GRANT", now - timedelta(days=31)),  # too old
        ("cn/450000", "allow", None, now),  # another province's chain
    ]
    async with sessions() as session, session.begin():
        for tenant, decision, reason, at in decided:
            await append_event(
                session,
                tenant=tenant,
                actor="outlet:x",
                action="card.status",
                target_type="card",
                target_id="1",
                decision=decision,
                reason=reason,
                at=at,
            )
    figures = await dashboard(sessions, auditor)
    assert figures.top == "cn/440000"
    assert figures.decisions == Counter(
        {("allow", ""): 2, ("deny", "NO_GRANT"): 1, ("deny", "ABOVE_CEILING"): 1}
    )
    assert figures.activations == Counter()
    assert figures.by_service is not None
    assert [path for path, _ in figures.by_service.departments] == [
        "cn/440000",
        "cn/440000/440100",
        "cn/440000/440300",
        "cn/440000/441900",
    ]


async def test_activations_by_channel(auditor, sessions):
    async with sessions() as session, session.begin():
        tenant = (await session.exec(select(Tenant.id).where(Tenant.path == "cn/440000/440100"))).one()
        for i, channel in enumerate(["bank_counter", "bank_counter", "hrss_window", None]):
            session.add(
                Card(
                    issuing_tenant_id=tenant,
                    card_number=f"D0000000{i}",
                    card_serial=f"serial-{i}",
                    id_number_enc=b"x",
                    id_number_hash=bytes([i]) * 32,
                    id_number_masked="440***********0000",
                    service_bank_code="102",
                    activation_channel=channel,
                )
            )
    figures = await dashboard(sessions, auditor)
    assert figures.activations == Counter({"bank_counter": 2, "hrss_window": 1})
