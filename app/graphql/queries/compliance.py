"""Compliance queries for auditors (and administrators) in their own subtree: who could do what at
any time, why a decision was what it was, and the audit trail. Authorization lives in
app/ops/compliance."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from app.graphql.pagination import Connection, build_connection, decode_cursor, page_size
from app.graphql.types.compliance import (
    Anomaly,
    AuditEvent,
    DecisionExplanation,
    GrantChange,
    HeldService,
    MatrixRow,
    OutletAuthority,
    OutletServices,
    RoleHolders,
    RoleHolding,
)
from app.graphql.types.outlet import Outlet
from app.ops.compliance import anomalies, events, history, reports, roles


def _arg(description: str):
    return strawberry.argument(description=description)


AT = "The time asked about (with its zone); default now. Any time since the platform's first change."


@strawberry.input(description="Which audit events to list; every condition given must hold.")
class AuditEventFilter:
    tenant: str | None = strawberry.field(
        default=None, description="Only the chains of this department and those below it."
    )
    from_: datetime | None = strawberry.field(default=None, name="from", description="From this time.")
    to: datetime | None = strawberry.field(default=None, description="Before this time.")
    actor: str | None = strawberry.field(
        default=None, description="e.g. principal:gz-admin or outlet:gz-th-wushan."
    )
    outlet: str | None = strawberry.field(
        default=None, description="The outlet's own calls and the changes made to it."
    )
    action: str | None = strawberry.field(
        default=None, description="e.g. grant.approve; ending in a dot, a family (grant.)."
    )
    decision: str | None = strawberry.field(default=None, description="allow or deny.")
    reason: str | None = strawberry.field(default=None, description="A reason code, e.g. NO_GRANT.")


@strawberry.type
class ComplianceQueries:
    @strawberry.field(
        description="Every outlet that could perform `service` on cards of `tenant` at `at`, by outlet "
        "code, each with the grants or statutory rules that made it so: ceilings, blocks, suspensions "
        "and windows as they stood then. Revoked grants still answer for the time they held."
    )
    async def who_can(
        self,
        info: strawberry.Info,
        tenant: Annotated[str, _arg("Path of the department whose cards are asked about.")],
        service: Annotated[str, _arg("The card service, e.g. password_reset.")],
        at: Annotated[datetime | None, _arg(AT)] = None,
        first: Annotated[int | None, _arg("Page size, 1-200 (default 50).")] = None,
        after: Annotated[str | None, _arg("endCursor of the previous page.")] = None,
    ) -> Connection[OutletAuthority]:
        size = page_size(first)
        found = await info.context.read(
            history.who_can_do, tenant, service, at, after=decode_cursor(after), limit=size + 1
        )
        return build_connection(
            found.page, size, found.total, key=lambda h: h.outlet.row.id, node=OutletAuthority.of
        )

    @strawberry.field(description="The card services an outlet held at `at`, with the grants that gave them.")
    async def what_can(
        self,
        info: strawberry.Info,
        outlet: Annotated[str, _arg("The outlet's code.")],
        at: Annotated[datetime | None, _arg(AT)] = None,
    ) -> OutletServices:
        found = await info.context.read(history.what_can_do, outlet, at)
        return OutletServices(
            at=found.at,
            outlet=Outlet.from_view(found.outlet),
            open=found.open,
            services=[HeldService.of(h) for h in found.services],
        )

    @strawberry.field(
        description="Who held which role in `tenant`'s area at `at`: the roles given there, below it and "
        "above it (which reach into it), with who gave each and when; removed roles still answer for "
        "the time they were held."
    )
    async def role_holders(
        self,
        info: strawberry.Info,
        tenant: Annotated[str, _arg("Path of the department.")],
        at: Annotated[datetime | None, _arg(AT)] = None,
        role: Annotated[str | None, _arg("Only this role, e.g. approver.")] = None,
    ) -> RoleHolders:
        found = await info.context.read(roles.role_holders, tenant, at, role=role)
        return RoleHolders(at=found.at, holders=[RoleHolding.of(r) for r in found.holders])

    @strawberry.field(
        description="The decision the engine would have made at `at` for this outlet, card service and "
        "a card of `cardTenant` whose state allows the service, with its reason."
    )
    async def explain_decision(
        self,
        info: strawberry.Info,
        outlet: Annotated[str, _arg("The outlet's code.")],
        card_tenant: Annotated[str, _arg("Path of the card's department.")],
        service: Annotated[str, _arg("The card service.")],
        at: Annotated[datetime | None, _arg(AT)] = None,
    ) -> DecisionExplanation:
        _, found = await info.context.read(history.explain_decision, outlet, card_tenant, service, at)
        return DecisionExplanation.of(found)

    @strawberry.field(
        description="Each change to grants and ceilings in `tenant`'s area between `from` and `to`: what, "
        "who proposed, who approved, which document, before and after; in the order they were made."
    )
    async def grant_history(
        self,
        info: strawberry.Info,
        tenant: Annotated[str, _arg("Path of a department you may audit.")],
        from_: Annotated[
            datetime | None, strawberry.argument(name="from", description="From this time.")
        ] = None,
        to: Annotated[datetime | None, _arg("Before this time.")] = None,
        first: Annotated[int | None, _arg("Page size, 1-200 (default 50).")] = None,
        after: Annotated[str | None, _arg("endCursor of the previous page.")] = None,
    ) -> Connection[GrantChange]:
        size = page_size(first)
        rows, total = await info.context.read(
            events.grant_history, tenant, from_, to, after=decode_cursor(after), limit=size + 1
        )
        return build_connection(rows, size, total, key=lambda c: str(c.event.id), node=GrantChange.of)

    @strawberry.field(
        description="The audit trail of your area (or of `filter.tenant`), in the order it was written."
    )
    async def audit_events(
        self,
        info: strawberry.Info,
        filter: Annotated[
            AuditEventFilter | None, _arg("Conditions; none: every event you may audit.")
        ] = None,
        first: Annotated[int | None, _arg("Page size, 1-200 (default 50).")] = None,
        after: Annotated[str | None, _arg("endCursor of the previous page.")] = None,
    ) -> Connection[AuditEvent]:
        size = page_size(first)
        given = filter or AuditEventFilter()
        conditions = events.EventFilter(
            tenant=given.tenant,
            since=given.from_,
            until=given.to,
            actor=given.actor,
            outlet=given.outlet,
            action=given.action,
            decision=given.decision,
            reason=given.reason,
        )
        rows, total = await info.context.read(
            events.list_events, conditions, after=decode_cursor(after), limit=size + 1
        )
        return build_connection(rows, size, total, key=lambda e: str(e.id), node=AuditEvent.from_row)

    @strawberry.field(
        description="The permission matrix of `tenant`'s area at `at`: every outlet (in code order) with the "
        "card services it could perform for cards of its own area and the granting reference of each. "
        "Also as CSV or XLSX from /reports/permission-matrix."
    )
    async def permission_matrix(
        self,
        info: strawberry.Info,
        tenant: Annotated[str, _arg("Path of a department you may audit.")],
        at: Annotated[datetime | None, _arg(AT)] = None,
        first: Annotated[int | None, _arg("Page size, 1-200 (default 50).")] = None,
        after: Annotated[str | None, _arg("endCursor of the previous page.")] = None,
    ) -> Connection[MatrixRow]:
        size = page_size(first)
        matrix = await info.context.read(reports.permission_matrix, tenant, at)
        start = decode_cursor(after)
        rows = [r for r in matrix.rows if start is None or r.outlet_id > start][: size + 1]
        return build_connection(rows, size, len(matrix.rows), key=lambda r: r.outlet_id, node=MatrixRow.of)

    @strawberry.field(
        description="What to look at first in `tenant`'s area: linked approvals, grants used outside their "
        "window or unused for 90 days, grants a kind cannot hold, financial services outside banks, "
        "credentials unused for 90 days, and people who both operate and approve in overlapping areas."
    )
    async def anomalies(
        self, info: strawberry.Info, tenant: Annotated[str, _arg("Path of a department you may audit.")]
    ) -> list[Anomaly]:
        found = await info.context.read(anomalies.anomalies, tenant)
        return [Anomaly(kind=a.kind, tenant=a.tenant, subject=a.subject, detail=a.detail) for a in found]
