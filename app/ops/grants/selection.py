"""Which outlets a bulk grant goes to: a selector (under a tenant, of a kind, of a bank, by name or
id) or an uploaded list of ids, and everything that would keep one of them from getting the grant.

All or nothing: when any selected outlet may not get the grant (unknown, closed, outside the granting
tenant, a financial service for a non-bank outlet, above the ceiling for its kind), the whole request
is refused with a summary per problem (how many outlets, the first few ids).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement
from sqlmodel import and_, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.domain.regions import dom_in
from app.ops.errors import OpsError
from app.ops.grants import changes as grants
from app.ops.grants.fit import grant_refusal
from app.ops.inputs import MAX_OUTLET_ID, check_length, parse_kind, parse_tenant
from app.store.queries import in_subtree
from app.store.slices import in_slices, streamed
from app.store.tables import Outlet, Tenant

CHUNK = 10_000  # ids per IN list: below SQLite's and PostgreSQL's bound-parameter limits
SAMPLE = 10

MAX_OUTLETS = 200_000


MAX_LIST_CHARS = 3_000_000


MAX_SEARCH = 64


MAX_BANK = 16


LIST_SEPARATORS = re.compile(r"[,\r\n]+")


@dataclass(frozen=True)
class OutletSelector:
    under: str | None = None
    kind: str | None = None
    bank: str | None = None
    status: str = "open"
    search: str | None = None


@dataclass
class Problem:
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
class Selection:
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


def selection_of(selector: OutletSelector | None, outlet_list: str | None, tenant: str) -> Selection:
    if (selector is None) == (outlet_list is None):
        raise OpsError(
            "BAD_INPUT", "choose outlets by a selector or by a list, not both or neither", field="selector"
        )
    if outlet_list is not None:
        ids = parse_outlet_list(outlet_list)
        digest = hashlib.sha256("\n".join(ids).encode()).hexdigest()
        chunks = [ids[i : i + CHUNK] for i in range(0, len(ids), CHUNK)]
        return Selection(
            [Outlet.id.in_(chunk) for chunk in chunks],
            "outletList",
            {"outlet_list": {"ids": len(ids), "sha256": digest}},
            ids,
        )
    sel = selector
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
    return Selection([and_(*conditions)], "selector", {"selector": described})


async def selected_outlets(session: AsyncSession, selection: Selection) -> list[tuple[str, str, str, str]]:
    """(id, kind, status, tenant path) of every selected outlet."""
    rows: list[tuple[str, str, str, str]] = []
    for condition in selection.conditions:
        query = (
            select(Outlet.id, Outlet.kind, Outlet.status, Tenant.path)
            .join(Tenant, Tenant.id == Outlet.tenant_id)
            .where(condition)
            .limit(MAX_OUTLETS + 1)
        )
        rows += await streamed(session, query)
    if len(rows) > MAX_OUTLETS:
        raise OpsError(
            "BAD_INPUT",
            f"the selector chooses more than {MAX_OUTLETS} outlets; narrow it",
            field=selection.field,
        )
    return rows


def kind_refusal(tenant: str, service: str, kind: str, table) -> Problem | None:
    refusal = grant_refusal(tenant, kind, service, table)
    if refusal is None:
        return None
    if refusal.code != "CEILING_EXCEEDED":
        return Problem("FINANCIAL_NOT_BANK", refusal.message, kind)
    return Problem("ABOVE_CEILING", refusal.message, kind, refusal.extensions.get("ceilingTenant"))


async def problems_of(
    session: AsyncSession,
    tenant: str,
    service: str,
    selection: Selection,
    outlets: list[tuple[str, str, str, str]],
) -> list[Problem]:
    """Every reason a selected outlet may not get the grant, one entry per reason (and kind)."""
    problems: dict[tuple[str, str | None], Problem] = {}

    def add(found: Problem, outlet_id: str) -> None:
        problems.setdefault((found.code, found.outlet_kind), found).add(outlet_id)

    if selection.requested is not None:
        present = {outlet_id for outlet_id, *_ in outlets}
        for outlet_id in selection.requested:
            if outlet_id not in present:
                add(Problem("UNKNOWN_OUTLET", "no such outlet"), outlet_id)
    table = await grants.ceiling_table(session)
    by_kind: dict[str, Problem | None] = {}
    async for part in in_slices(outlets):
        for outlet_id, kind, status, path in part:
            if not dom_in(path, tenant):
                add(Problem("OUTSIDE_TENANT", f"the outlet is outside tenant {tenant}"), outlet_id)
            elif status != "open":
                add(Problem("CLOSED", "the outlet is closed"), outlet_id)
            else:
                if kind not in by_kind:
                    by_kind[kind] = kind_refusal(tenant, service, kind, table)
                if by_kind[kind] is not None:
                    add(by_kind[kind], outlet_id)
    return list(problems.values())


def refusal_of(problems: list[Problem], selection: Selection) -> OpsError:
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
