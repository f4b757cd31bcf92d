"""Bulk grants: one card service to many outlets, chosen by a selector or an uploaded list of ids.

All or nothing. A grant document (文号) covers a definite set of outlets, so when any selected
outlet may not get the grant (unknown, closed, outside the granting tenant, a financial service
for a non-bank outlet, above the ceiling for its kind) the whole request is refused with a summary
per problem (how many outlets, the first few ids), and the administrator narrows the selector or
fixes the list. Nothing is skipped silently.

Sized for 100,000 outlets in one transaction: the outlets are read with a few set queries, the
grants are written by `INSERT ... SELECT` from the outlet table (no per-outlet statement), their
policy lines by two executemany statements, and one audit event records the whole bulk grant with
its selection, count and grant id range. Grants are to individual outlets, so revoking or
suspending one later works as for any grant. Under two-person approval they are created
`proposed`, like any other grant, and an approver decides them together (`decide_bulk`), by the
grant id range and count the bulk grant reported.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, func, literal, update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import and_, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.authz.projection import grant_line
from app.domain.regions import dom_in
from app.ops import grants
from app.ops.auth import Actor, authorize, deny
from app.ops.errors import OpsError, changed_meanwhile
from app.ops.grant_admin import (
    MAX_OUTLET_ID,
    approval_refusal,
    check_length,
    check_reason,
    parse_grant_id,
    parse_kind,
    parse_service,
    parse_tenant,
)
from app.ops.refusals import audited_use_case
from app.ops.tenant_queries import in_subtree
from app.ops.tenant_settings import effective_settings
from app.store import policy
from app.store.audit import append_event
from app.store.tables import Grant, Outlet, Tenant

MAX_OUTLETS = 200_000
MAX_LIST_CHARS = 3_000_000
MAX_SEARCH = 64
MAX_BANK = 16
CHUNK = 10_000  # ids per IN list: below SQLite's and PostgreSQL's bound-parameter limits
SAMPLE = 10
LIST_SEPARATORS = re.compile(r"[,\r\n]+")


@dataclass(frozen=True)
class OutletSelector:
    under: str | None = None
    kind: str | None = None
    bank: str | None = None
    status: str = "open"
    search: str | None = None


@dataclass(frozen=True)
class BulkGrantRequest:
    tenant: str
    service: str
    valid_from: datetime
    document_ref: str
    valid_until: datetime | None = None
    reason: str | None = None
    selector: OutletSelector | None = None
    outlet_list: str | None = None


@dataclass(frozen=True)
class BulkGrantResult:
    count: int
    state: str
    first_grant_id: int
    last_grant_id: int
    sample_grant_ids: list[int]
    sample_outlet_ids: list[str]


@dataclass
class _Problem:
    code: str
    message: str
    outlet_kind: str | None = None
    ceiling_tenant: str | None = None
    outlets: list[str] = field(default_factory=list)
    count: int = 0

    def add(self, outlet_id: str) -> None:
        self.count += 1
        if len(self.outlets) < SAMPLE:
            self.outlets.append(outlet_id)

    def summary(self) -> dict:
        extra = {"outletKind": self.outlet_kind, "ceilingTenant": self.ceiling_tenant}
        return {
            "problem": self.code,
            "message": self.message,
            "count": self.count,
            "outletIds": self.outlets,
            **{k: v for k, v in extra.items() if v is not None},
        }


@dataclass(frozen=True)
class _NewGrant:
    """What `grant_line` reads from a grant, for rows written without ORM objects."""

    id: int
    outlet_id: str | None
    service: str
    valid_from: datetime
    valid_until: datetime | None
    outlet_kind: str | None = None


@dataclass(frozen=True)
class _Selection:
    """Outlets chosen by the request: SQL conditions (one per chunk) and how to describe them."""

    conditions: list[ColumnElement]
    field: str
    description: dict
    requested: list[str] | None = None  # the uploaded ids, in order, without repeats


def parse_outlet_list(text: str) -> list[str]:
    if len(text) > MAX_LIST_CHARS:
        raise OpsError(
            "BAD_INPUT", f"the outlet list is longer than {MAX_LIST_CHARS} characters", field="outletList"
        )
    ids = list(dict.fromkeys(s.strip() for s in LIST_SEPARATORS.split(text) if s.strip()))
    if not ids:
        raise OpsError("BAD_INPUT", "the outlet list names no outlets", field="outletList")
    if len(ids) > MAX_OUTLETS:
        raise OpsError("BAD_INPUT", f"at most {MAX_OUTLETS} outlets per bulk grant", field="outletList")
    too_long = next((i for i in ids if len(i) > MAX_OUTLET_ID), None)
    if too_long is not None:
        raise OpsError(
            "BAD_INPUT",
            f"outlet ids are at most {MAX_OUTLET_ID} characters: {too_long[:40]}...",
            field="outletList",
        )
    return ids


def _selection(req: BulkGrantRequest, tenant: str) -> _Selection:
    if (req.selector is None) == (req.outlet_list is None):
        raise OpsError(
            "BAD_INPUT", "choose outlets by a selector or by a list, not both or neither", field="selector"
        )
    if req.outlet_list is not None:
        ids = parse_outlet_list(req.outlet_list)
        digest = hashlib.sha256("\n".join(ids).encode()).hexdigest()
        chunks = [ids[i : i + CHUNK] for i in range(0, len(ids), CHUNK)]
        return _Selection(
            [Outlet.id.in_(chunk) for chunk in chunks],
            "outletList",
            {"outlet_list": {"ids": len(ids), "sha256": digest}},
            ids,
        )
    sel = req.selector
    under = parse_tenant(sel.under, "selector.under") if sel.under is not None else tenant
    if not dom_in(under, tenant):
        raise OpsError(
            "BAD_INPUT",
            f"selector.under must lie inside the granting tenant {tenant}",
            field="selector.under",
        )
    conditions = [in_subtree(Tenant.path, under)]
    described: dict = {"under": under, "status": sel.status}
    if sel.kind is not None:
        described["kind"] = parse_kind(sel.kind, "selector.kind")
        conditions.append(Outlet.kind == described["kind"])
    if sel.bank is not None:
        check_length("selector.bank", sel.bank, MAX_BANK)
        described["bank"] = sel.bank
        conditions.append(Outlet.bank_code == sel.bank)
    if sel.status not in ("open", "closed"):
        raise OpsError("BAD_INPUT", "selector.status is open or closed", field="selector.status")
    conditions.append(Outlet.status == sel.status)
    if sel.search is not None:
        check_length("selector.search", sel.search, MAX_SEARCH)
        described["search"] = sel.search
        conditions.append(
            or_(
                Outlet.name.icontains(sel.search, autoescape=True),
                Outlet.id.icontains(sel.search, autoescape=True),
            )
        )
    return _Selection([and_(*conditions)], "selector", {"selector": described})


async def _selected_outlets(session: AsyncSession, selection: _Selection) -> list[tuple[str, str, str, str]]:
    """(id, kind, status, tenant path) of every selected outlet."""
    rows: list[tuple[str, str, str, str]] = []
    for condition in selection.conditions:
        query = (
            select(Outlet.id, Outlet.kind, Outlet.status, Tenant.path)
            .join(Tenant, Tenant.id == Outlet.tenant_id)
            .where(condition)
            .limit(MAX_OUTLETS + 1)
        )
        rows += (await session.exec(query)).all()
    if len(rows) > MAX_OUTLETS:
        raise OpsError(
            "BAD_INPUT",
            f"the selector chooses more than {MAX_OUTLETS} outlets; narrow it",
            field=selection.field,
        )
    return rows


def _kind_refusal(tenant: str, service: str, kind: str, table) -> _Problem | None:
    try:
        grants.check_service_fits_kind(service, kind)
    except OpsError as err:
        return _Problem("FINANCIAL_NOT_BANK", err.message, kind)
    refusal = grants.ceiling_refusal(tenant, kind, service, table)
    if refusal is None:
        return None
    return _Problem("ABOVE_CEILING", refusal.message, kind, refusal.extensions.get("ceilingTenant"))


async def _problems(
    session: AsyncSession,
    tenant: str,
    service: str,
    selection: _Selection,
    outlets: list[tuple[str, str, str, str]],
) -> list[_Problem]:
    """Every reason a selected outlet may not get the grant, one entry per reason (and kind)."""
    problems: dict[tuple[str, str | None], _Problem] = {}

    def add(found: _Problem, outlet_id: str) -> None:
        problems.setdefault((found.code, found.outlet_kind), found).add(outlet_id)

    if selection.requested is not None:
        present = {outlet_id for outlet_id, *_ in outlets}
        for outlet_id in selection.requested:
            if outlet_id not in present:
                add(_Problem("UNKNOWN_OUTLET", "no such outlet"), outlet_id)
    table = await grants.ceiling_table(session)
    by_kind: dict[str, _Problem | None] = {}
    for outlet_id, kind, status, path in outlets:
        if not dom_in(path, tenant):
            add(_Problem("OUTSIDE_TENANT", f"the outlet is outside tenant {tenant}"), outlet_id)
        elif status != "open":
            add(_Problem("CLOSED", "the outlet is closed"), outlet_id)
        else:
            if kind not in by_kind:
                by_kind[kind] = _kind_refusal(tenant, service, kind, table)
            if by_kind[kind] is not None:
                add(by_kind[kind], outlet_id)
    return list(problems.values())


def _refusal(problems: list[_Problem], selection: _Selection) -> OpsError:
    summary = [p.summary() for p in problems]
    total = sum(p.count for p in problems)
    if all(p.code == "ABOVE_CEILING" for p in problems):
        return OpsError(
            "CEILING_EXCEEDED",
            f"{total} selected outlets may not get this card service under the ceiling; nothing was granted",
            ceilingTenant=problems[0].ceiling_tenant,
            problems=summary,
        )
    field_name = "service" if all(p.code == "FINANCIAL_NOT_BANK" for p in problems) else selection.field
    return OpsError(
        "BAD_INPUT",
        f"{total} selected outlets may not get this grant; nothing was granted",
        field=field_name,
        problems=summary,
    )


async def _insert_grants(
    session: AsyncSession,
    selection: _Selection,
    tenant: str,
    kinds: list[str],
    values: dict,
) -> list[tuple[int, str]]:
    """`INSERT INTO grant ... SELECT FROM outlet` for each condition; returns (grant id, outlet id).

    The statement repeats the checked conditions (inside the tenant, open, a checked kind), so an
    outlet that changed since it was checked is left out and the count comparison notices."""
    table = Grant.__table__
    names = list(values)
    columns = [literal(values[n], table.c[n].type) for n in names]
    inserted: list[tuple[int, str]] = []
    for condition in selection.conditions:
        source = (
            select(*columns, Outlet.id)
            .select_from(Outlet)
            .join(Tenant, Tenant.id == Outlet.tenant_id)
            .where(
                condition, in_subtree(Tenant.path, tenant), Outlet.status == "open", Outlet.kind.in_(kinds)
            )
        )
        statement = (
            table.insert().from_select([*names, "outlet_id"], source).returning(table.c.id, table.c.outlet_id)
        )
        inserted += (await session.exec(statement)).all()
    return inserted


@audited_use_case("grant.bulk_create")
async def bulk_grant(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    req: BulkGrantRequest,
    *,
    request_id: str | None = None,
) -> BulkGrantResult:
    tenant = parse_tenant(req.tenant)
    service = parse_service(req.service)
    await authorize(sessions, actor, "write", "grant", tenant, request_id=request_id)
    terms = grants.check_terms(service, req.valid_from, req.valid_until, req.document_ref, req.reason)
    valid_from, valid_until = terms.valid_from, terms.valid_until
    selection = _selection(req, tenant)
    async with sessions() as session, session.begin():
        tenant_row = await grants.tenant_by_path(session, tenant)
        outlets = await _selected_outlets(session, selection)
        if not outlets:
            raise OpsError("BAD_INPUT", "the selection contains no outlets", field=selection.field)
        problems = await _problems(session, tenant, service, selection, outlets)
        if problems:
            raise _refusal(problems, selection)
        proposed = (await effective_settings(session, tenant)).two_person_approval
        now = datetime.now(UTC)
        values = {
            "tenant_id": tenant_row.id,
            "service": service,
            "valid_from": valid_from,
            "valid_until": valid_until,
            "document_ref": terms.document_ref,
            "reason": terms.reason,
            "state": "proposed" if proposed else "active",
            "proposed_by": actor.principal_id,
            "version": 1,
            "created_at": now,
            "updated_at": now,
        }
        kinds = Counter(kind for _, kind, _, _ in outlets)
        inserted = await _insert_grants(session, selection, tenant, sorted(kinds), values)
        if len(inserted) != len(outlets):  # an outlet changed between reading and writing
            raise OpsError(
                "CONFLICT", "the selected outlets changed while granting; nothing was granted, retry"
            )
        inserted.sort()
        if not proposed:
            await policy.add_lines(
                session,
                [
                    grant_line(_NewGrant(gid, outlet_id, service, valid_from, valid_until), tenant)
                    for gid, outlet_id in inserted
                ],
            )
        first, last = inserted[0][0], inserted[-1][0]
        await append_event(
            session,
            tenant=tenant,
            actor=actor.label,
            credential=actor.credential,
            action="grant.bulk_create",
            target_type="grant",
            target_id=f"{first}..{last}",
            request_id=request_id,
            detail={
                **selection.description,
                "count": len(inserted),
                "state": values["state"],
                "service": service,
                "document_ref": values["document_ref"],
                "valid_from": valid_from.isoformat(),
                "valid_until": valid_until.isoformat() if valid_until else None,
                "first_grant_id": first,
                "last_grant_id": last,
                "kinds": dict(sorted(kinds.items())),
            },
        )
    return BulkGrantResult(
        count=len(inserted),
        state=values["state"],
        first_grant_id=first,
        last_grant_id=last,
        sample_grant_ids=[gid for gid, _ in inserted[:SAMPLE]],
        sample_outlet_ids=[outlet_id for _, outlet_id in inserted[:SAMPLE]],
    )


# --- deciding a bulk proposal at once ------------------------------------------------------------


@dataclass(frozen=True)
class BulkDecisionRequest:
    """The proposals of one bulk grant: its tenant and grant id range, and how many the approver saw."""

    tenant: str
    first_grant_id: str
    last_grant_id: str
    expected_count: int
    approve: bool
    reason: str | None = None


def _range_where(tenant_id: int, first: int, last: int):
    return and_(Grant.tenant_id == tenant_id, Grant.id >= first, Grant.id <= last, Grant.state == "proposed")


async def _proposal_summary(session: AsyncSession, where) -> tuple[list[int | None], list[tuple[str, str]]]:
    """The proposers, and the (outlet kind, card service) pairs, of the proposals in range."""
    proposers = (await session.exec(select(Grant.proposed_by).where(where).distinct())).all()
    kind = func.coalesce(Grant.outlet_kind, Outlet.kind)
    targets = (
        await session.exec(
            select(kind, Grant.service)
            .outerjoin(Outlet, Outlet.id == Grant.outlet_id)
            .where(where)
            .distinct()
        )
    ).all()
    return list(proposers), [tuple(t) for t in targets]


@audited_use_case("grant.bulk_decide")
async def decide_bulk(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    req: BulkDecisionRequest,
    *,
    request_id: str | None = None,
) -> BulkGrantResult:
    """Approve or reject, all at once, the proposals a bulk grant created under two-person approval.

    The approver names the bulk grant by its tenant and grant id range, and the count they reviewed:
    a different number of proposals in that range is a CONFLICT, so nothing slipped in is approved
    unseen. The proposals must come from one proposer, whom the usual rules forbid the approver to be.
    """
    tenant = parse_tenant(req.tenant)
    first = parse_grant_id(req.first_grant_id, "firstGrantId")
    last = parse_grant_id(req.last_grant_id, "lastGrantId")
    why = check_reason(req.reason) if req.reason is not None or not req.approve else None
    await authorize(
        sessions, actor, "approve", "grant", tenant, target_id=f"{first}..{last}", request_id=request_id
    )
    refusal = None
    async with sessions() as session, session.begin():
        tenant_row = await grants.tenant_by_path(session, tenant)
        where = _range_where(tenant_row.id, first, last)
        proposers, targets = await _proposal_summary(session, where)
        count = (await session.exec(select(func.count()).select_from(Grant).where(where))).one()
        if count != req.expected_count:
            raise OpsError(
                "CONFLICT",
                f"{count} proposals of {tenant} lie in grants {first}..{last}, not {req.expected_count}",
                currentCount=count,
            )
        if count == 0:
            raise OpsError("BAD_INPUT", "no proposals in that range", field="firstGrantId")
        if len(proposers) > 1:
            raise OpsError(
                "BAD_INPUT", "the range holds proposals of several people; narrow it", field="firstGrantId"
            )
        if req.approve:
            refusal = await approval_refusal(session, actor, proposers[0], f"grants {first}..{last}")
        if refusal is None:
            return await _apply_bulk_decision(
                session, actor, req, tenant, tenant_row.id, (first, last), count, targets, why, request_id
            )
    raise await deny(
        sessions,
        actor,
        "grant.approve",
        "grant",
        f"{first}..{last}",
        tenant,
        request_id=request_id,
        why=refusal,
    )


async def _apply_bulk_decision(
    session: AsyncSession,
    actor: Actor,
    req: BulkDecisionRequest,
    tenant: str,
    tenant_id: int,
    id_range: tuple[int, int],
    count: int,
    targets: list[tuple[str, str]],
    why: str | None,
    request_id: str | None,
) -> BulkGrantResult:
    first, last = id_range
    if req.approve:  # every (kind, service) must still fit: a ceiling may have shrunk since
        table = await grants.ceiling_table(session)
        for kind, service in targets:
            refusal = grants.ceiling_refusal(tenant, kind, service, table)
            if refusal is not None:
                raise refusal
    state = "active" if req.approve else "rejected"
    where = _range_where(tenant_id, first, last)
    changed = (
        await session.exec(
            select(
                Grant.id,
                Grant.outlet_id,
                Grant.outlet_kind,
                Grant.service,
                Grant.valid_from,
                Grant.valid_until,
            )
            .where(where)
            .order_by(Grant.id)
        )
    ).all()
    updated = await session.exec(
        update(Grant)
        .where(where)
        .values(
            state=state,
            state_reason=why,
            approved_by=actor.principal_id if req.approve else None,
            version=Grant.version + 1,
            updated_at=datetime.now(UTC),
        )
        .execution_options(synchronize_session=False)
    )
    # Compare-and-set over the whole range: on PostgreSQL a concurrent decision may have taken some
    # of these proposals after they were counted (the UPDATE waited for its row locks, then skipped
    # rows no longer proposed).
    if updated.rowcount != len(changed):
        raise changed_meanwhile(f"the proposals {first}..{last}")
    if req.approve:
        await policy.add_lines(
            session,
            [
                grant_line(_NewGrant(gid, outlet_id, service, nbf, exp, kind), tenant)
                for gid, outlet_id, kind, service, nbf, exp in changed
            ],
        )
    await append_event(
        session,
        tenant=tenant,
        actor=actor.label,
        credential=actor.credential,
        action="grant.bulk_approve" if req.approve else "grant.bulk_reject",
        target_type="grant",
        target_id=f"{first}..{last}",
        request_id=request_id,
        detail={"count": count, "state": state, "first_grant_id": first, "last_grant_id": last, "why": why},
    )
    return BulkGrantResult(
        count=count,
        state=state,
        first_grant_id=changed[0][0],
        last_grant_id=changed[-1][0],
        sample_grant_ids=[row[0] for row in changed[:SAMPLE]],
        sample_outlet_ids=[row[1] for row in changed[:SAMPLE] if row[1] is not None],
    )
