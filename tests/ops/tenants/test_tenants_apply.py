import shutil
from pathlib import Path

import pytest
from sqlmodel import func, select

from app.domain.catalogue import OutletKind
from app.ops.tenants.apply import PruneRefused, apply_tenant_files
from app.ops.tenants.files import TenantFileError
from app.store.tables import AuditEvent, Outlet, PolicyChange, PolicyLine, Tenant


async def _count(sessions, table, *where) -> int:
    async with sessions() as session:
        return (await session.exec(select(func.count()).select_from(table).where(*where))).one()


@pytest.fixture
def files(tmp_path, tenants_dir) -> Path:
    target = tmp_path / "tenants"
    shutil.copytree(tenants_dir, target)
    return target


def _write(files: Path, name: str, text: str) -> Path:
    path = files / name
    path.write_text(text, encoding="utf-8")
    return path


async def test_demo_tree_applies_and_is_idempotent(sessions, files):
    plan = await apply_tenant_files(sessions, files)
    created_tenants = sum(1 for c in plan.changes if c.action == "create" and c.kind == "tenant")
    created_outlets = sum(1 for c in plan.changes if c.action == "create" and c.kind == "outlet")
    assert created_tenants == await _count(sessions, Tenant) >= 10
    assert created_outlets == await _count(sessions, Outlet) >= 20
    # Every outlet is in its kind's group in its own tenant, and the log says so.
    assert await _count(sessions, PolicyLine, PolicyLine.ptype == "g") == created_outlets
    assert await _count(sessions, PolicyChange) == created_outlets
    events = await _count(sessions, AuditEvent)
    assert events == created_tenants + created_outlets

    again = await apply_tenant_files(sessions, files)
    assert not again.has_changes
    assert again.count("unchanged") == created_tenants + created_outlets
    assert await _count(sessions, AuditEvent) == events
    dry = await apply_tenant_files(sessions, files, dry_run=True)
    assert not dry.has_changes


async def test_every_outlet_kind_and_two_banks_in_the_demo(sessions, files):
    await apply_tenant_files(sessions, files)
    async with sessions() as session:
        kinds = set((await session.exec(select(Outlet.kind))).all())
        banks = set((await session.exec(select(Outlet.bank_code).where(Outlet.kind == "bank_outlet"))).all())
        paths = set((await session.exec(select(Tenant.path))).all())
    assert kinds == {kind.value for kind in OutletKind}
    assert len(banks) >= 2
    assert {"cn/440000", "cn/440000/440100", "cn/440000/440300", "cn/440000/441900"} <= paths


async def test_dry_run_writes_nothing(sessions, files):
    plan = await apply_tenant_files(sessions, files, dry_run=True)
    assert plan.count("create") > 0
    assert await _count(sessions, Tenant) == 0
    assert await _count(sessions, AuditEvent) == 0


async def test_changed_file_updates_and_moves_the_group_line(sessions, files):
    await apply_tenant_files(sessions, files)
    text = (files / "guangdong.toml").read_text(encoding="utf-8")
    text = text.replace(
        'id = "gz-th-kiosk-metro"\ntenant = "cn/440000/440100/440106"',
        'id = "gz-th-kiosk-metro"\ntenant = "cn/440000/440100/440104"',
    )
    text = text.replace("广州市人力资源和社会保障局", "广州市人力资源和社会保障局（新）")
    _write(files, "guangdong.toml", text)
    plan = await apply_tenant_files(sessions, files)
    updates = {c.key: c for c in plan.changes if c.action == "update"}
    assert set(updates) == {"cn/440000/440100", "gz-th-kiosk-metro"}
    assert updates["gz-th-kiosk-metro"].fields["tenant"] == (
        "cn/440000/440100/440106",
        "cn/440000/440100/440104",
    )
    async with sessions() as session:
        line = (
            await session.exec(select(PolicyLine).where(PolicyLine.source_id == "gz-th-kiosk-metro"))
        ).one()
        removed = (
            await session.exec(
                select(func.count()).select_from(PolicyChange).where(PolicyChange.op == "remove")
            )
        ).one()
    assert (line.v0, line.v1, line.v2) == (
        "outlet:gz-th-kiosk-metro",
        "kind:self_service_terminal",
        "cn/440000/440100/440104",
    )
    assert removed == 1


async def test_missing_objects_are_reported_and_pruned_only_on_request(sessions, files):
    await apply_tenant_files(sessions, files)
    text = (files / "guangdong.toml").read_text(encoding="utf-8")
    start = text.index('[[outlet]]\nid = "dg-ccb-nancheng"')
    _write(files, "guangdong.toml", text[:start])
    plan = await apply_tenant_files(sessions, files)
    assert [(c.action, c.key) for c in plan.changes if c.action == "missing"] == [
        ("missing", "dg-ccb-nancheng")
    ]
    async with sessions() as session:
        assert (await session.get(Outlet, "dg-ccb-nancheng")).status == "open"
    plan = await apply_tenant_files(sessions, files, prune=True)
    assert plan.count("prune") == 1
    async with sessions() as session:
        assert (await session.get(Outlet, "dg-ccb-nancheng")).status == "closed"
        lines = (
            await session.exec(select(PolicyLine).where(PolicyLine.source_id == "dg-ccb-nancheng"))
        ).all()
    assert lines == []


async def test_api_created_outlets_are_never_removed(sessions, files):
    await apply_tenant_files(sessions, files)
    async with sessions() as session, session.begin():
        tenant = (await session.exec(select(Tenant).where(Tenant.path == "cn/440000/440100"))).one()
        session.add(Outlet(id="api-made", tenant_id=tenant.id, kind="hrss_hall", name="API outlet"))
    plan = await apply_tenant_files(sessions, files, prune=True)
    assert not plan.has_changes
    async with sessions() as session:
        assert (await session.get(Outlet, "api-made")).status == "open"


async def test_pruning_a_tenant_with_outlets_is_refused_whole(sessions, files):
    await apply_tenant_files(sessions, files)
    text = (files / "guangdong.toml").read_text(encoding="utf-8")
    text = text.replace(
        '[[tenant]]\npath = "cn/440000/440100/440111"\nname = "广州市白云区人力资源和社会保障局"\n', ""
    )
    start = text.index('[[outlet]]\nid = "gz-by-abc-jingxi"')
    end = text.index("[[outlet]]", start + 5)
    text = text[:start] + text[end:]
    _write(files, "guangdong.toml", text)
    # The outlet is closed (not deleted) by prune, so the tenant still has it: the whole apply is refused.
    with pytest.raises(PruneRefused, match="cn/440000/440100/440111"):
        await apply_tenant_files(sessions, files, prune=True)
    async with sessions() as session:
        assert (await session.get(Outlet, "gz-by-abc-jingxi")).status == "open"


BAD_FILES = [
    ('[[tenant]]\npath = "cn/440000/450100"\nname = "x"\n', "tenant[0].path", 2),
    ('[[tenant]]\npath = "cn/440000/440100/441206"\nname = "x"\n', "tenant[0].path", 2),
    (
        '[[outlet]]\nid = "x1"\ntenant = "cn/440000/440100"\nkind = "casino"\nname = "x"\n',
        "outlet[0].kind",
        4,
    ),
    (
        '[[outlet]]\nid = "x2"\ntenant = "cn/440000/440100/440106"\nkind = "grassroots_platform"\n'
        'name = "x"\nnbs_code = "440305001"\n',
        "outlet[0].nbs_code",
        6,
    ),
    (
        '[[outlet]]\nid = "x3"\ntenant = "cn/440000/440100/440113"\nkind = "hrss_hall"\nname = "x"\n',
        "outlet.tenant",
        None,
    ),
    (
        '[[outlet]]\nid = "gz-th-hall"\ntenant = "cn/440000/440100"\nkind = "hrss_hall"\nname = "dup"\n',
        "outlet.id",
        None,
    ),
    (
        '[[outlet]]\nid = "x4"\ntenant = "cn/440000/440100"\nkind = "bank_outlet"\nname = "no bank"\n',
        "outlet[0]",
        1,
    ),
    (
        '[[outlet]]\nid = "BAD ID"\ntenant = "cn/440000/440100"\nkind = "hrss_hall"\nname = "x"\n',
        "outlet[0].id",
        2,
    ),
    (
        '[[tenant]]\npath = "cn/440000/440500"\nname = "x"\npin_lock_threshold = 99\n',
        "tenant[0].pin_lock_threshold",
        4,
    ),
    ("[[tenant]\npath = 1", "toml", None),
    # A district switching off the two-person approval its city requires (security review, item 5).
    (
        '[[tenant]]\npath = "cn/440000/440100/440199"\nname = "x"\ntwo_person_approval = false\n',
        "tenant.two_person_approval",
        1,
    ),
    # Names are visible text: no control or invisible characters.
    ('[[tenant]]\npath = "cn/440000/440500"\nname = "汕头\\u202e局"\n', "tenant[0].name", 3),
]


@pytest.mark.parametrize(("text", "key", "line"), BAD_FILES)
async def test_bad_files_are_refused_with_file_key_and_line_and_write_nothing(
    sessions, files, text, key, line
):
    _write(files, "zz-bad.toml", text)
    with pytest.raises(TenantFileError) as refused:
        await apply_tenant_files(sessions, files)
    problems = [p for p in refused.value.problems if p.file.endswith("zz-bad.toml")]
    assert problems, str(refused.value)
    assert any(p.key.startswith(key) for p in problems), str(refused.value)
    if line is not None:
        assert any(p.line == line for p in problems), str(refused.value)
    assert await _count(sessions, Tenant) == 0
    assert await _count(sessions, AuditEvent) == 0


async def test_settings_the_files_leave_out_are_left_to_the_api(sessions, files):
    await apply_tenant_files(sessions, files)
    async with sessions() as session, session.begin():
        gz = (await session.exec(select(Tenant).where(Tenant.path == "cn/440000/440100"))).one()
        gz.pin_lock_threshold = 6  # set through the API: the file does not declare it
        gz.two_person_approval = False  # the file declares true: apply puts it back
    plan = await apply_tenant_files(sessions, files)
    assert [(c.key, list(c.fields)) for c in plan.changes if c.action == "update"] == [
        ("cn/440000/440100", ["two_person_approval"])
    ]
    async with sessions() as session:
        gz = (await session.exec(select(Tenant).where(Tenant.path == "cn/440000/440100"))).one()
    assert gz.pin_lock_threshold == 6
