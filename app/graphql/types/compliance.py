"""GraphQL types of the compliance plane: who could do what and why, at any past time, and the audit
trail as auditors read it."""

from __future__ import annotations

from datetime import datetime

import orjson
import strawberry
from strawberry.scalars import JSON

from app.domain.reasons import Reason
from app.graphql.types.grant import Grant
from app.graphql.types.outlet import Outlet
from app.ops.compliance.events import GrantChange as GrantChangeView
from app.ops.compliance.history import Explained, Held, Service, Via
from app.ops.compliance.reports import MatrixRow as MatrixRowView
from app.store.role_history import DatedRole
from app.store.tables import AuditEvent as AuditEventRow

DecisionReason = strawberry.enum(
    Reason,
    name="DecisionReason",
    description="Why the business plane refuses a card service (the one reason enum of the platform).",
)


@strawberry.type(
    description="What made an outlet able to perform a card service: a grant or a statutory rule."
)
class Authority:
    grant: Grant | None = strawberry.field(
        description="The grant, with who proposed and approved it and its document (文号); "
        "empty for a statutory rule. It may have been revoked since."
    )
    statutory_rule: str | None = strawberry.field(
        description="The statutory rule (e.g. builtin:hospital_first_use) when no grant was needed."
    )
    covers_cards_of: str = strawberry.field(
        description="The department whose cards (its area and below) the grant or rule covers."
    )
    in_force_since: datetime | None = strawberry.field(
        description="When the grant's policy line was put in force (approval, resumption); empty for a "
        "statutory rule."
    )
    put_in_force_by: str | None = strawberry.field(
        description="Who put it in force, as the audit trail names them; empty for a statutory rule or a "
        "line from before the history was kept."
    )

    @classmethod
    def of(cls, via: Via) -> Authority:
        grant = Grant.from_view(via.grant) if via.grant else None
        return cls(
            grant=grant,
            statutory_rule=via.statutory,
            covers_cards_of=via.scope,
            in_force_since=via.since,
            put_in_force_by=via.by,
        )


@strawberry.type(description="An outlet that could perform the card service asked about, and why.")
class OutletAuthority:
    outlet: Outlet = strawberry.field(description="The outlet (as it is now; it may have closed since).")
    via: list[Authority] = strawberry.field(description="Every grant or rule that allowed it.")

    @classmethod
    def of(cls, held: Held) -> OutletAuthority:
        return cls(outlet=Outlet.from_view(held.outlet), via=[Authority.of(v) for v in held.via])


@strawberry.type(description="A card service an outlet held, and what gave it.")
class HeldService:
    service: str = strawberry.field(description="The card service, e.g. password_reset.")
    via: list[Authority] = strawberry.field(description="Every grant or rule that gave it.")

    @classmethod
    def of(cls, held: Service) -> HeldService:
        return cls(service=held.service, via=[Authority.of(v) for v in held.via])


@strawberry.type(description="The card services one outlet could perform at one time.")
class OutletServices:
    at: datetime = strawberry.field(description="The time asked about.")
    outlet: Outlet = strawberry.field(description="The outlet.")
    open: bool = strawberry.field(description="Whether the outlet was open at that time.")
    services: list[HeldService] = strawberry.field(
        description="For cards of the outlet's own area, with the grants; empty if it was not open."
    )


@strawberry.type(description="A role one person held, with who gave it when and, if it ended, when.")
class RoleHolding:
    principal: str = strawberry.field(description="The person's login name.")
    display_name: str = strawberry.field(description="Their name as shown.")
    role: str = strawberry.field(description="The role.")
    tenant: str = strawberry.field(description="Path of the department where they held it.")
    since: datetime = strawberry.field(description="When it was given.")
    given_by: str | None = strawberry.field(description="Who gave it (null: the tenant files).")
    until: datetime | None = strawberry.field(
        description="When it was taken away or the person deactivated, if it was (even after the time "
        "asked about); null: held still."
    )
    taken_by: str | None = strawberry.field(description="Who took it away (null: not taken, or deactivated).")

    @classmethod
    def of(cls, row: DatedRole) -> RoleHolding:
        return cls(
            principal=row.name,
            display_name=row.display_name,
            role=row.role,
            tenant=row.tenant,
            since=row.added_at,
            given_by=row.added_by,
            until=row.removed_at,
            taken_by=row.removed_by,
        )


@strawberry.type(description="The roles held in one area at one time.")
class RoleHolders:
    at: datetime = strawberry.field(description="The time asked about.")
    holders: list[RoleHolding] = strawberry.field(
        description="In the area's subtree and at the departments above it, by department, role, person."
    )


@strawberry.type(description="The decision the engine would have made at a time, with its reason.")
class DecisionExplanation:
    at: datetime = strawberry.field(description="The time asked about.")
    allowed: bool = strawberry.field(
        description="Whether the outlet could perform the card service on a card of that department "
        "(whose state allows it)."
    )
    reason: DecisionReason | None = strawberry.field(description="Why not; empty when allowed.")
    explanation: str = strawberry.field(description="The reason in words.")
    via: list[Authority] = strawberry.field(
        description="The grants or rules that allowed it, or that would have applied (suspended, "
        "out of window, blocked)."
    )

    @classmethod
    def of(cls, found: Explained) -> DecisionExplanation:
        return cls(
            at=found.at,
            allowed=found.allowed,
            reason=found.reason,
            explanation=found.why,
            via=[Authority.of(v) for v in found.via],
        )


@strawberry.type(description="One event of the tamper-evident audit trail, as stored (already masked).")
class AuditEvent:
    id: strawberry.ID = strawberry.field(description="Position in the whole trail (commit order).")
    tenant: str = strawberry.field(description="The department whose chain holds it.")
    seq: int = strawberry.field(description="Its number in that chain.")
    at: datetime = strawberry.field(description="When it was written.")
    actor: str = strawberry.field(description="Who acted: principal:<login>, outlet:<code> or cli:<command>.")
    credential: str | None = strawberry.field(
        description="The credential that acted: token:<id> or key:<id> (never the secret)."
    )
    action: str = strawberry.field(description="What was done, e.g. grant.approve or card.password_reset.")
    target_type: str = strawberry.field(description="What it was done to: grant, outlet, card, ...")
    target_id: str = strawberry.field(description="Which one.")
    decision: str | None = strawberry.field(description="allow or deny, for decisions.")
    reason: DecisionReason | None = strawberry.field(description="Why a decision was deny.")
    detail: JSON = strawberry.field(description="Before and after, and what else the action records.")
    request_id: str | None = strawberry.field(description="The request that wrote it.")
    hash: str = strawberry.field(description="Its link in the chain (hex SHA-256).")

    @classmethod
    def from_row(cls, row: AuditEventRow) -> AuditEvent:
        return cls(
            id=strawberry.ID(str(row.id)),
            tenant=row.tenant,
            seq=row.seq,
            at=row.at,
            actor=row.actor,
            credential=row.credential,
            action=row.action,
            target_type=row.target_type,
            target_id=row.target_id,
            decision=row.decision,
            reason=Reason(row.reason) if row.reason in Reason.__members__ else None,
            detail=orjson.loads(row.detail),
            request_id=row.request_id,
            hash=row.hash,
        )


@strawberry.type(description="A change to a grant or a ceiling: what, who, before and after.")
class GrantChange:
    event: AuditEvent = strawberry.field(description="The audit event that recorded the change.")
    grant: Grant | None = strawberry.field(
        description="The grant changed (as it is now: who proposed, who approved, its document); "
        "empty for ceilings and for events about many grants at once."
    )
    before: JSON | None = strawberry.field(description="The grant or ceiling before the change.")
    after: JSON | None = strawberry.field(description="After the change.")

    @classmethod
    def of(cls, change: GrantChangeView) -> GrantChange:
        event = AuditEvent.from_row(change.event)
        detail = event.detail if isinstance(event.detail, dict) else {}
        return cls(
            event=event,
            grant=Grant.from_view(change.grant) if change.grant else None,
            before=detail.get("before"),
            after=detail.get("after"),
        )


@strawberry.type(description="One cell of the permission matrix: a card service the outlet could perform.")
class MatrixCell:
    service: str = strawberry.field(description="The card service.")
    grant_ids: list[str] = strawberry.field(
        description="The grants that gave it (or builtin:... for a statutory rule)."
    )
    references: list[str] = strawberry.field(
        description="What a person reads: #grant and its document (文号), or the statutory rule's name."
    )


@strawberry.type(description="One outlet's row of the permission matrix.")
class MatrixRow:
    outlet_id: str = strawberry.field(description="The outlet's code.")
    name: str = strawberry.field(description="Its name.")
    kind: str = strawberry.field(description="Its kind.")
    tenant: str = strawberry.field(description="Its department at that time.")
    cells: list[MatrixCell] = strawberry.field(
        description="The card services it could perform for cards of its own area; the others are absent."
    )

    @classmethod
    def of(cls, row: MatrixRowView) -> MatrixRow:
        return cls(
            outlet_id=row.outlet_id,
            name=row.name,
            kind=row.kind,
            tenant=row.tenant,
            cells=[
                MatrixCell(service=s, grant_ids=list(c.grant_ids), references=list(c.references))
                for s, c in row.cells.items()
            ],
        )


@strawberry.type(
    description="Something in an area that breaks a rule of thumb, for a compliance officer to look at."
)
class Anomaly:
    kind: str = strawberry.field(
        description="LINKED_APPROVAL, USED_OUTSIDE_WINDOW, UNUSED_GRANT, KIND_CANNOT_HOLD, "
        "FINANCIAL_NOT_BANK, UNUSED_CREDENTIAL or SEPARATION_OF_DUTIES."
    )
    tenant: str = strawberry.field(description="The department it belongs to.")
    subject: str = strawberry.field(
        description="What it is about: grant:<id>, principal:<login>, token:<id>, key:<id>."
    )
    detail: str = strawberry.field(description="Why it is listed.")
