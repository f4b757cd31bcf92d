"""anomalies(tenant): each rule of thumb found where it is broken, and nowhere else.

The platform refuses most of these at the door (linked approvals, grants above a kind's catalogue),
so the rows are written here as data from before a rule, a hand edit or a bug would leave them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from app.ops.auth import authenticate
from app.ops.compliance.anomalies import anomalies
from app.ops.errors import OpsError
from app.ops.principals.credentials import create_principal_with_token
from app.ops.tenants.apply import apply_tenant_files
from app.store.audit import append_event
from app.store.tables import Grant, PersonalToken, Principal, RoleAssignment, Tenant

GZ, TH = "cn/440000/440100", "cn/440000/440100/440106"
LONG_AGO = datetime.now(UTC) - timedelta(days=120)


async def person(sessions, name: str, created_by: int | None = None) -> int:
    async with sessions() as session, session.begin():
        row = Principal(name=name, display_name=name, created_by=created_by)
        session.add(row)
        await session.flush()
        return row.id


async def grant(sessions, **kw) -> int:
    async with sessions() as session, session.begin():
        tenant = (await session.exec(select(Tenant).where(Tenant.path == kw.pop("tenant", GZ)))).one()
        row = Grant(
            tenant_id=tenant.id,
            service=kw.pop("service", "password_change"),
            valid_from=kw.pop("valid_from", datetime.now(UTC) - timedelta(days=1)),
            document_ref="穗人社函〔2026〕1号",
            state="active",
            **kw,
        )
        session.add(row)
        await session.flush()
        return row.id


@pytest.fixture
async def auditor(sessions, tenants_dir):
    await apply_tenant_files(sessions, tenants_dir)
    issued = await create_principal_with_token(sessions, tenant_path=GZ, role="auditor")
    async with sessions() as session:
        return await authenticate(session, issued.token)


async def test_each_anomaly_is_found_and_only_there(sessions, auditor):
    boss = await person(sessions, "gz.boss")
    proposer = await person(sessions, "gz.proposer", created_by=boss)
    approver = await person(sessions, "gz.approver", created_by=boss)
    stranger = await person(sessions, "gz.stranger")
    linked = await grant(sessions, outlet_id="gz-th-wushan", proposed_by=proposer, approved_by=approver)
    fair = await grant(sessions, outlet_id="gz-th-wushan", proposed_by=proposer, approved_by=stranger)
    cannot = await grant(sessions, outlet_id="gz-th-pharm-dasenlin", service="password_reset")
    financial = await grant(sessions, outlet_kind="grassroots_platform", service="financial_activation")
    idle = await grant(sessions, outlet_id="gz-th-shipai", created_at=LONG_AGO, valid_from=LONG_AGO)
    used = await grant(sessions, outlet_id="gz-th-wushan-huajing", created_at=LONG_AGO, valid_from=LONG_AGO)
    later = await grant(sessions, outlet_id="gz-th-hall", valid_from=datetime.now(UTC) + timedelta(days=5))
    async with sessions() as session, session.begin():
        for gid, at in ((used, datetime.now(UTC) - timedelta(days=3)), (later, datetime.now(UTC))):
            await append_event(
                session,
                tenant=TH,
                actor="outlet:x",
                credential="key:1",
                action="card.password_change",
                target_type="card",
                target_id="7",
                decision="allow",
                detail={"grant_ids": [str(gid)]},
                at=at,
            )
        # A token nobody used for 120 days, and a person who operates and approves in Tianhe.
        session.add(
            PersonalToken(principal_id=stranger, token_hash="f" * 64, prefix="ssc_old", created_at=LONG_AGO)
        )
        gz = (await session.exec(select(Tenant).where(Tenant.path == GZ))).one()
        th = (await session.exec(select(Tenant).where(Tenant.path == TH))).one()
        session.add(RoleAssignment(principal_id=stranger, tenant_id=gz.id, role="operator"))
        session.add(RoleAssignment(principal_id=stranger, tenant_id=th.id, role="approver"))
        session.add(RoleAssignment(principal_id=proposer, tenant_id=th.id, role="operator"))

    found = {(a.kind, a.subject) for a in await anomalies(sessions, auditor, GZ)}
    expected = {
        ("LINKED_APPROVAL", f"grant:{linked}"),
        ("KIND_CANNOT_HOLD", f"grant:{cannot}"),
        ("FINANCIAL_NOT_BANK", f"grant:{financial}"),
        ("UNUSED_GRANT", f"grant:{idle}"),
        ("USED_OUTSIDE_WINDOW", f"grant:{later}"),
        ("SEPARATION_OF_DUTIES", "principal:gz.stranger"),
    }
    assert expected <= found
    tokens = {s for k, s in found if k == "UNUSED_CREDENTIAL"}
    async with sessions() as session:
        old = (await session.exec(select(PersonalToken.id).where(PersonalToken.prefix == "ssc_old"))).one()
    assert tokens == {f"token:{old}"}  # the auditor's own fresh token is not listed
    others = found - expected - {("UNUSED_CREDENTIAL", f"token:{old}")}
    assert others == set(), others
    assert not {s for _, s in found} & {f"grant:{fair}", f"grant:{used}", "principal:gz.proposer"}


async def test_anomalies_outside_the_area_are_refused(sessions, auditor):
    with pytest.raises(OpsError) as refused:
        await anomalies(sessions, auditor, "cn/440000/440300")
    assert refused.value.code == "FORBIDDEN"
