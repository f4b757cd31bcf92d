"""importOutlets over HTTP: a CSV is checked as a whole and imported entirely or not at all."""

from __future__ import annotations

import itertools
import time

import pytest
from sqlmodel import func, select

from app.domain.audit_chain import GENESIS_HASH, chain_hash
from app.ops.outlets.imports import MAX_BYTES, MAX_ROWS
from app.store.audit import event_content
from app.store.tables import AuditEvent, Outlet, PolicyLine
from tests.api.conftest import error_code
from tests.api.outlet_helpers import GZ, SZ, TH, db_state
from tests.audit_helpers import assert_only_denial

IMPORT = "mutation($i: ImportOutletsInput!) { importOutlets(input: $i) { imported outletIds } }"
HEADER = "id,tenant,kind,name,bank,nbs_code,address"


def csv_text(*rows: str, header: str = HEADER) -> str:
    return "\n".join([header, *rows]) + "\n"


GOOD = csv_text(
    f"gz-imp-hall,{GZ},hrss_hall,广州市第二服务中心,,,",
    f"th-imp-bank,{TH},bank_outlet,工商银行天河支行,102,,天河路 2 号",
    f'th-imp-street,{TH},grassroots_platform,"猎德街道服务站, 天河",,440106010,',
)


def problems(body: dict) -> list[tuple[int, str | None]]:
    extensions = body["errors"][0]["extensions"]
    assert extensions["code"] == "BAD_INPUT" and extensions["field"] == "csv"
    return [(p["row"], p["column"]) for p in extensions["problems"]]


async def test_an_import_registers_every_row_with_lines_and_events(api, sessions):
    body = await api.gql(IMPORT, {"i": {"tenant": GZ, "csv": "\ufeff" + GOOD}}, who="gz_operator")
    assert body["data"]["importOutlets"] == {
        "imported": 3,
        "outletIds": ["gz-imp-hall", "th-imp-bank", "th-imp-street"],
    }
    async with sessions() as session:
        rows = {o.id: o for o in (await session.exec(select(Outlet).where(Outlet.id.like("%-imp-%")))).all()}
        lines = (
            await session.exec(
                select(PolicyLine.v0, PolicyLine.v1, PolicyLine.v2).where(
                    PolicyLine.source == "outlet", PolicyLine.source_id.like("%-imp-%")
                )
            )
        ).all()
        events = (
            await session.exec(
                select(AuditEvent.tenant, AuditEvent.target_id).where(
                    AuditEvent.action == "outlet.create", AuditEvent.target_id.like("%-imp-%")
                )
            )
        ).all()
    assert rows["th-imp-bank"].bank_code == "102" and rows["th-imp-bank"].address == "天河路 2 号"
    assert (
        rows["th-imp-street"].name == "猎德街道服务站, 天河" and rows["th-imp-street"].nbs_code == "440106010"
    )
    assert all(r.managed_by is None and r.status == "open" for r in rows.values())
    assert sorted(lines) == [
        ("outlet:gz-imp-hall", "kind:hrss_hall", GZ),
        ("outlet:th-imp-bank", "kind:bank_outlet", TH),
        ("outlet:th-imp-street", "kind:grassroots_platform", TH),
    ]
    assert sorted(events) == [(GZ, "gz-imp-hall"), (TH, "th-imp-bank"), (TH, "th-imp-street")]
    await assert_chains_intact(sessions)


async def assert_chains_intact(sessions) -> None:
    """Imported events are linked in bulk: each chain must still verify from its first event on."""
    async with sessions() as session:
        events = (await session.exec(select(AuditEvent).order_by(AuditEvent.tenant, AuditEvent.seq))).all()
    for tenant, chain in itertools.groupby(events, key=lambda e: e.tenant):
        prev_hash, seq = GENESIS_HASH, 0
        for e in chain:
            assert (e.seq, e.prev_hash) == (seq + 1, prev_hash), tenant
            assert e.hash == chain_hash(e.prev_hash, event_content(e))
            prev_hash, seq = e.hash, e.seq


async def test_columns_may_come_in_any_order_and_optional_ones_may_be_left_out(api):
    text = csv_text(f"hall B,th-imp-b,hrss_hall,{TH}", header="name,id,kind,tenant")
    body = await api.gql(IMPORT, {"i": {"tenant": TH, "csv": text}}, who="th_admin")
    assert body["data"]["importOutlets"]["outletIds"] == ["th-imp-b"]


async def test_every_problem_is_reported_and_nothing_is_written(api, sessions):
    text = csv_text(
        f"gz-imp-ok,{GZ},hrss_hall,fine,,,",  # row 2: fine on its own
        f"gz-imp-kind,{GZ},bank,bad kind,,,",  # 3
        f"sz-imp,{SZ},hrss_hall,outside,,,",  # 4
        f"gz-imp-ok,{GZ},hrss_hall,duplicate id,,,",  # 5
        f"gz-th-hall,{TH},hrss_hall,existing id,,,",  # 6
        f"th-imp-nbs,{TH},grassroots_platform,taken nbs,,440106001,",  # 7
        f"th-imp-bank,{TH},bank_outlet,no bank,,,",  # 8
        f"gz-imp-short,{GZ},hrss_hall",  # 9
        "th-imp-x,cn/440000/440100/440199,hrss_hall,no such tenant,,,",  # 10
        f"gz-imp-street,{GZ},grassroots_platform,city street,,440100001,",  # 11
        f"Bad Id,{TH},hrss_hall,{'长' * 129},,,",  # 12
    )
    before = await db_state(sessions)
    body = await api.gql(IMPORT, {"i": {"tenant": GZ, "csv": text}}, who="gz_admin")
    assert problems(body) == [
        (3, "kind"),
        (4, "tenant"),
        (5, "id"),
        (6, "id"),
        (7, "nbs_code"),
        (8, "bank"),
        (9, None),
        (10, "tenant"),
        (11, "tenant"),
        (12, "name"),
        (12, "id"),
    ]
    assert body["errors"][0]["extensions"]["problemCount"] == 11
    assert_only_denial(before, await db_state(sessions), "gz_admin")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", [(1, None)]),
        ("id,tenant,kind\n", [(1, "name")]),
        ("id,tenant,kind,name,colour\n", [(1, "colour")]),
        ("id,tenant,kind,name,name\n", [(1, "name")]),
        (HEADER + "\n", [(2, None)]),
        (HEADER + '\n"unterminated,x\n', [(2, None)]),
    ],
)
async def test_header_and_shape_problems(api, sessions, text, expected):
    before = await db_state(sessions)
    body = await api.gql(IMPORT, {"i": {"tenant": GZ, "csv": text}}, who="gz_admin")
    assert problems(body) == expected
    assert_only_denial(before, await db_state(sessions), "gz_admin")


async def test_size_limits(api, sessions):
    before = await db_state(sessions)
    rows = [f"gz-imp-{n:05d},{GZ},hrss_hall,n{n},,," for n in range(MAX_ROWS + 1)]
    body = await api.gql(IMPORT, {"i": {"tenant": GZ, "csv": csv_text(*rows)}}, who="gz_admin")
    assert problems(body) == [(MAX_ROWS + 2, None)]
    assert_only_denial(before, await db_state(sessions), "gz_admin")
    before = await db_state(sessions)
    big = csv_text(f"gz-imp-big,{GZ},hrss_hall,big,,,") + " " * MAX_BYTES
    body = await api.gql(IMPORT, {"i": {"tenant": GZ, "csv": big}}, who="gz_admin")
    assert error_code(body) == "BAD_INPUT" and body["errors"][0]["extensions"]["field"] == "csv"
    assert_only_denial(before, await db_state(sessions), "gz_admin")


async def test_the_largest_import_goes_through(api, sessions):
    rows = [f"gz-imp-{n:05d},{TH},designated_pharmacy,药店 {n},,,天河路 {n} 号" for n in range(MAX_ROWS)]
    started = time.monotonic()
    body = await api.gql(IMPORT, {"i": {"tenant": GZ, "csv": csv_text(*rows)}}, who="gz_admin")
    elapsed = time.monotonic() - started
    assert body["data"]["importOutlets"]["imported"] == MAX_ROWS, body
    assert elapsed < 30, elapsed
    await assert_chains_intact(sessions)
    async with sessions() as session:
        count = (
            await session.exec(select(func.count()).select_from(AuditEvent).where(AuditEvent.tenant == TH))
        ).one()
    assert count > MAX_ROWS


@pytest.mark.parametrize(
    ("who", "tenant", "code"),
    [
        ("sz_admin", GZ, "FORBIDDEN"),  # sibling
        ("th_admin", GZ, "FORBIDDEN"),  # child acting upward
        ("gz_auditor", GZ, "FORBIDDEN"),
        ("gz_approver", GZ, "FORBIDDEN"),
        (None, GZ, "UNAUTHENTICATED"),
    ],
)
async def test_import_outside_reach_is_refused_and_changes_nothing(api, sessions, who, tenant, code):
    before = await db_state(sessions)
    body = await api.gql(IMPORT, {"i": {"tenant": tenant, "csv": GOOD}}, **({"who": who} if who else {}))
    assert error_code(body) == code
    assert_only_denial(before, await db_state(sessions), who)


async def test_a_bad_import_tenant_is_bad_input(api, sessions):
    before = await db_state(sessions)
    body = await api.gql(IMPORT, {"i": {"tenant": "cn/44", "csv": GOOD}}, who="gz_admin")
    assert error_code(body) == "BAD_INPUT" and body["errors"][0]["extensions"]["field"] == "tenant"
    assert_only_denial(before, await db_state(sessions), "gz_admin")
