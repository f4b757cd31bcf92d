"""`ssc tenants apply`: make the database match the tenant files, idempotently, in one transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.authz.projection import outlet_group_line
from app.domain.regions import parse_tenant_path
from app.ops.outlets.closing import close_outlet_row, live_grants, revoke_grants
from app.ops.tenants.files import OutletSpec, TenantSpec, TenantTree, load_tree
from app.store import policy
from app.store.audit import append_event
from app.store.tables import Grant, Outlet, RoleAssignment, Tenant

ACTOR = "cli:tenants-apply"


@dataclass(frozen=True)
class Change:
    action: str  # create | update | unchanged | missing | prune
    kind: str  # tenant | outlet
    key: str
    fields: dict[str, tuple[object, object]] = field(default_factory=dict)

    def describe(self) -> str:
        diff = ", ".join(
            f"{name}: {old!r} -> {new!r}"
            for name, old, new in ((n, o, w) for n, (o, w) in self.fields.items())
        )
        return f"{self.action:<10} {self.kind:<7} {self.key}" + (f"  ({diff})" if diff else "")


@dataclass
class Plan:
    changes: list[Change] = field(default_factory=list)

    def count(self, action: str) -> int:
        return sum(1 for c in self.changes if c.action == action)

    @property
    def has_changes(self) -> bool:
        return any(c.action in ("create", "update", "prune") for c in self.changes)


class PruneRefused(Exception):
    """A file-managed tenant left the files but still has outlets, children or grants."""


def _tenant_fields(spec: TenantSpec) -> dict[str, object]:
    fields: dict[str, object] = {"name": spec.name, "managed_by": Path(spec.source.rsplit(":", 1)[0]).name}
    # A setting the file declares is the file's; one it leaves out is managed through the API
    # (updateTenantSettings) and a later apply leaves it alone.
    if spec.two_person_approval is not None:
        fields["two_person_approval"] = spec.two_person_approval
    if spec.pin_lock_threshold is not None:
        fields["pin_lock_threshold"] = spec.pin_lock_threshold
    return fields


def _outlet_fields(spec: OutletSpec, tenant_path: str) -> dict[str, object]:
    return {
        "tenant": tenant_path,
        "kind": spec.kind,
        "name": spec.name,
        "bank_code": spec.bank_code,
        "nbs_code": spec.nbs_code,
        "address": spec.address,
        "status": "open",
        "managed_by": Path(spec.source.rsplit(":", 1)[0]).name,
    }


def _diff(current: dict[str, object], wanted: dict[str, object]) -> dict[str, tuple[object, object]]:
    return {k: (current.get(k), v) for k, v in wanted.items() if current.get(k) != v}


async def _snapshot(session: AsyncSession) -> tuple[dict[str, Tenant], dict[str, Outlet]]:
    tenants = {t.path: t for t in (await session.exec(select(Tenant))).all()}
    outlets = {o.id: o for o in (await session.exec(select(Outlet))).all()}
    return tenants, outlets


def make_plan(tree: TenantTree, tenants: dict[str, Tenant], outlets: dict[str, Outlet], prune: bool) -> Plan:
    plan = Plan()
    by_id = {t.id: t.path for t in tenants.values()}
    for path in sorted(tree.tenants, key=lambda p: (p.count("/"), p)):
        wanted = _tenant_fields(tree.tenants[path])
        row = tenants.get(path)
        if row is None:
            plan.changes.append(Change("create", "tenant", path))
            continue
        diff = _diff({k: getattr(row, k) for k in wanted}, wanted)
        plan.changes.append(Change("update" if diff else "unchanged", "tenant", path, diff))
    for outlet_id in sorted(tree.outlets):
        spec = tree.outlets[outlet_id]
        wanted = _outlet_fields(spec, spec.tenant)
        row = outlets.get(outlet_id)
        if row is None:
            plan.changes.append(Change("create", "outlet", outlet_id))
            continue
        current = {k: getattr(row, k) for k in wanted if k != "tenant"} | {"tenant": by_id[row.tenant_id]}
        diff = _diff(current, wanted)
        plan.changes.append(Change("update" if diff else "unchanged", "outlet", outlet_id, diff))
    gone = "prune" if prune else "missing"
    for outlet_id, row in sorted(outlets.items()):
        if row.managed_by and row.status == "open" and outlet_id not in tree.outlets:
            plan.changes.append(Change(gone, "outlet", outlet_id))
    for path, row in sorted(tenants.items(), key=lambda kv: (-kv[0].count("/"), kv[0])):
        if row.managed_by and path not in tree.tenants:
            plan.changes.append(Change(gone, "tenant", path))
    return plan


async def _apply(
    session: AsyncSession,
    tree: TenantTree,
    plan: Plan,
    tenants: dict[str, Tenant],
    outlets: dict[str, Outlet],
) -> None:
    now = datetime.now(UTC)
    for change in plan.changes:
        if change.kind != "tenant" or change.action not in ("create", "update"):
            continue
        spec = tree.tenants[change.key]
        wanted = _tenant_fields(spec)
        if change.action == "create":
            parsed = parse_tenant_path(spec.path)
            parent = tenants.get(parsed.parent.path) if parsed.parent else None
            row = Tenant(
                path=spec.path,
                parent_id=parent.id if parent else None,
                code=parsed.code,
                level=parsed.level.value,
                **wanted,
            )
            session.add(row)
            await session.flush()
            tenants[spec.path] = row
        else:
            row = tenants[spec.path]
            for name, (_, new) in change.fields.items():
                setattr(row, name, new)
            row.version += 1
            row.updated_at = now
        await append_event(
            session,
            tenant=spec.path,
            actor=ACTOR,
            action=f"tenant.{change.action}",
            target_type="tenant",
            target_id=spec.path,
            detail={"source": spec.source, "changes": {k: list(v) for k, v in change.fields.items()}},
        )
    for change in plan.changes:
        if change.kind != "outlet":
            continue
        if change.action in ("create", "update"):
            await _apply_outlet(session, tree.outlets[change.key], change, tenants, outlets, now)
        elif change.action == "prune":
            await _close_outlet(session, outlets[change.key], tenants)
    for change in plan.changes:
        if change.kind == "tenant" and change.action == "prune":
            await _delete_tenant(session, tenants[change.key], outlets)


async def _apply_outlet(session, spec: OutletSpec, change: Change, tenants, outlets, now) -> None:
    wanted = _outlet_fields(spec, spec.tenant)
    tenant = tenants[spec.tenant]
    row = outlets.get(spec.id)
    if row is None:
        row = Outlet(id=spec.id, tenant_id=tenant.id, **{k: v for k, v in wanted.items() if k != "tenant"})
        session.add(row)
        await session.flush()
        await policy.add_lines(session, [outlet_group_line(row.id, row.kind, spec.tenant)], by=ACTOR)
        revoked: list[int] = []
    else:
        revoked = []
        if "tenant" in change.fields or "kind" in change.fields or "status" in change.fields:
            # The kind group line names tenant and kind; a move also ends the old tenant's grants.
            await policy.remove_source_lines(session, source="outlet", source_ids=[row.id], by=ACTOR)
            if "tenant" in change.fields:
                live = [grant.id for grant, _ in await live_grants(session, row.id)]
                revoked = await revoke_grants(
                    session, live, f"outlet moved to {spec.tenant} by {spec.source}", actor=ACTOR
                )
            await policy.add_lines(session, [outlet_group_line(row.id, spec.kind, spec.tenant)], by=ACTOR)
        for name, (_, new) in change.fields.items():
            if name == "tenant":
                row.tenant_id = tenant.id
            else:
                setattr(row, name, new)
        row.version += 1
        row.updated_at = now
    await append_event(
        session,
        tenant=spec.tenant,
        actor=ACTOR,
        action=f"outlet.{change.action}",
        target_type="outlet",
        target_id=spec.id,
        detail={
            "source": spec.source,
            "changes": {k: list(v) for k, v in change.fields.items()},
            "revoked_grants": revoked,
        },
    )


async def _close_outlet(session: AsyncSession, row: Outlet, tenants: dict[str, Tenant]) -> None:
    """The same closing as the API's closeOutlet (app/ops/outlets/closing.py), so the same trail."""
    tenant_path = next(path for path, t in tenants.items() if t.id == row.tenant_id)
    await close_outlet_row(
        session, row, tenant_path, "outlet removed from the tenant files (--prune)", actor=ACTOR
    )


async def _delete_tenant(session: AsyncSession, row: Tenant, outlets: dict[str, Outlet]) -> None:
    dependents = [
        ("child tenants", select(Tenant.id).where(Tenant.parent_id == row.id)),
        ("outlets", select(Outlet.id).where(Outlet.tenant_id == row.id)),
        ("grants", select(Grant.id).where(Grant.tenant_id == row.id)),
        ("role assignments", select(RoleAssignment.id).where(RoleAssignment.tenant_id == row.id)),
    ]
    for label, query in dependents:
        if (await session.exec(query.limit(1))).first() is not None:
            raise PruneRefused(f"tenant {row.path} left the files but still has {label}; it was not removed")
    await append_event(
        session,
        tenant=row.path,
        actor=ACTOR,
        action="tenant.delete",
        target_type="tenant",
        target_id=row.path,
        detail={"why": "pruned"},
    )
    await session.delete(row)
    await session.flush()


async def apply_tenant_files(
    sessions: async_sessionmaker[AsyncSession], directory: Path, *, dry_run: bool = False, prune: bool = False
) -> Plan:
    """Validate the files, plan, and (unless dry_run) apply the plan in a single transaction."""
    async with sessions() as session, session.begin():
        tenants, outlets = await _snapshot(session)
        tree = load_tree(directory, known_tenants=set(tenants))
        plan = make_plan(tree, tenants, outlets, prune)
        if not dry_run and plan.has_changes:
            await _apply(session, tree, plan, tenants, outlets)
    return plan
