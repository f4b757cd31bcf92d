"""Grant, approval, ceiling and bulk-grant mutations; each is one use case in app/ops."""

from __future__ import annotations

from datetime import datetime

import strawberry

from app.graphql.types.ceiling import Ceiling
from app.graphql.types.grant import Grant, GrantState
from app.graphql.types.revision import PolicyChange
from app.ops.grants import admin as grant_admin
from app.ops.grants import bulk as bulk_grant
from app.ops.grants import bulk_decisions, ceilings, selection
from app.ops.grants.changes import GrantRequest


@strawberry.input(
    description="A new grant: to one outlet (outletId) or to every outlet of a kind (outletKind)."
)
class GrantServiceInput:
    tenant: str = strawberry.field(description="Path of the granting department.")
    service: str = strawberry.field(description="The card service to grant, e.g. password_reset.")
    valid_from: datetime = strawberry.field(description="When the grant starts to apply (with time zone).")
    document_ref: str = strawberry.field(description="Reference number of the approving document (文号).")
    outlet_id: str | None = strawberry.field(
        default=None, description="The outlet to grant to; it must lie in the department's area."
    )
    outlet_kind: str | None = strawberry.field(
        default=None, description="Or: grant to every outlet of this kind in the department's area."
    )
    valid_until: datetime | None = strawberry.field(
        default=None, description="When it stops applying (exclusive); leave empty for no end."
    )
    reason: str | None = strawberry.field(
        default=None, description="Why the grant is made (up to 512 characters)."
    )


@strawberry.input(description="Approve a proposed grant.")
class ApproveGrantInput:
    id: strawberry.ID = strawberry.field(description="The grant's number.")
    expected_version: int = strawberry.field(description="The version you reviewed; refused if it changed.")


@strawberry.input(description="Reject, suspend, resume or revoke a grant, saying why.")
class ChangeGrantInput:
    id: strawberry.ID = strawberry.field(description="The grant's number.")
    reason: str = strawberry.field(description="Why (1-512 characters); kept in the audit trail.")
    expected_version: int = strawberry.field(description="The version you saw; refused if it changed.")


@strawberry.input(description="Set what departments below a department may grant to one outlet kind.")
class SetCeilingInput:
    tenant: str = strawberry.field(description="Path of the department setting the ceiling.")
    outlet_kind: str = strawberry.field(description="The outlet kind the ceiling applies to.")
    services: list[str] = strawberry.field(description="The card services that may still be granted.")
    expected_version: int | None = strawberry.field(
        default=None,
        description="The version you saw (0 when no ceiling was set); leave empty to set it regardless.",
    )


@strawberry.input(description="Which outlets a bulk grant goes to; every condition given must hold.")
class OutletSelectorInput:
    under: str | None = strawberry.field(
        default=None, description="Outlets of this department and those below it (default: the granting one)."
    )
    kind: str | None = strawberry.field(default=None, description="Only outlets of this kind.")
    bank: str | None = strawberry.field(default=None, description="Only bank outlets of this bank code.")
    status: str = strawberry.field(default="open", description="open (default) or closed.")
    search: str | None = strawberry.field(
        default=None, description="Only outlets whose name or id contains this text."
    )


@strawberry.input(
    description="One card service to many outlets at once, chosen by a selector or by an uploaded list. "
    "If any chosen outlet may not get it, nothing is granted and the refusal lists the problems."
)
class BulkGrantInput:
    tenant: str = strawberry.field(description="Path of the granting department.")
    service: str = strawberry.field(description="The card service to grant.")
    valid_from: datetime = strawberry.field(description="When the grants start to apply (with time zone).")
    document_ref: str = strawberry.field(description="Reference number of the approving document (文号).")
    valid_until: datetime | None = strawberry.field(
        default=None, description="When they stop applying (exclusive); leave empty for no end."
    )
    reason: str | None = strawberry.field(default=None, description="Why the grants are made.")
    selector: OutletSelectorInput | None = strawberry.field(
        default=None, description="Choose the outlets by conditions."
    )
    outlet_list: str | None = strawberry.field(
        default=None,
        description="Or: the text of an uploaded file of outlet ids separated by newlines or commas "
        f"(at most {selection.MAX_OUTLETS} ids).",
    )


@strawberry.input(description="The proposals one bulk grant created, as its answer reported them.")
class ApproveBulkGrantInput:
    tenant: str = strawberry.field(description="Path of the granting department.")
    first_grant_id: strawberry.ID = strawberry.field(description="The bulk grant's firstGrantId.")
    last_grant_id: strawberry.ID = strawberry.field(description="The bulk grant's lastGrantId.")
    expected_count: int = strawberry.field(
        description="How many proposals you reviewed; refused if the range holds a different number."
    )


@strawberry.input(description="Turn down the proposals one bulk grant created, saying why.")
class RejectBulkGrantInput:
    tenant: str = strawberry.field(description="Path of the granting department.")
    first_grant_id: strawberry.ID = strawberry.field(description="The bulk grant's firstGrantId.")
    last_grant_id: strawberry.ID = strawberry.field(description="The bulk grant's lastGrantId.")
    expected_count: int = strawberry.field(
        description="How many proposals you reviewed; refused if the range holds a different number."
    )
    reason: str = strawberry.field(description="Why (1-512 characters); kept in the audit trail.")


@strawberry.type(description="The grant after the change.")
class GrantPayload(PolicyChange):
    grant: Grant = strawberry.field(description="The grant as it is now.")


@strawberry.type(description="The ceiling after the change, and the grants below it that no longer fit.")
class SetCeilingPayload(PolicyChange):
    ceiling: Ceiling = strawberry.field(description="The ceiling as it is now.")
    suspended_count: int = strawberry.field(
        description="How many grants below were suspended (or, if only proposed, rejected) because they "
        "no longer fit."
    )
    suspended_grants: list[Grant] = strawberry.field(
        description=f"The first {ceilings.AFFECTED_SHOWN} of those grants."
    )


@strawberry.type(description="What a bulk grant created, or what deciding its proposals changed.")
class BulkGrantPayload(PolicyChange):
    count: int = strawberry.field(description="How many grants, one per outlet.")
    state: GrantState = strawberry.field(
        description="Their state now: active, proposed (two-person approval) or rejected."
    )
    first_grant_id: strawberry.ID = strawberry.field(description="The lowest grant number among them.")
    last_grant_id: strawberry.ID = strawberry.field(description="The highest grant number among them.")
    sample_grant_ids: list[strawberry.ID] = strawberry.field(description="The first few grants' numbers.")
    sample_outlet_ids: list[str] = strawberry.field(description="The outlets those first grants are for.")

    @classmethod
    def from_result(cls, result: bulk_grant.BulkGrantResult) -> BulkGrantPayload:
        return cls(
            count=result.count,
            state=GrantState(result.state),
            first_grant_id=strawberry.ID(str(result.first_grant_id)),
            last_grant_id=strawberry.ID(str(result.last_grant_id)),
            sample_grant_ids=[strawberry.ID(str(g)) for g in result.sample_grant_ids],
            sample_outlet_ids=result.sample_outlet_ids,
        )


def _selector(value: OutletSelectorInput | None) -> selection.OutletSelector | None:
    if value is None:
        return None
    return selection.OutletSelector(
        under=value.under, kind=value.kind, bank=value.bank, status=value.status, search=value.search
    )


@strawberry.type
class GrantMutations:
    @strawberry.mutation(
        description="Grant a card service. When two-person approval applies to the department the grant "
        "is created as a proposal that another person must approve."
    )
    async def grant_service(self, info: strawberry.Info, input: GrantServiceInput) -> GrantPayload:
        view = await info.context.run(
            grant_admin.create_grant,
            GrantRequest(
                tenant=input.tenant,
                service=input.service,
                valid_from=input.valid_from,
                document_ref=input.document_ref,
                outlet_id=input.outlet_id,
                outlet_kind=input.outlet_kind,
                valid_until=input.valid_until,
                reason=input.reason,
            ),
        )
        return GrantPayload(grant=Grant.from_view(view))

    @strawberry.mutation(
        description="Approve a proposed grant, which puts it in force. Nobody approves a grant they "
        "proposed, nor one proposed by the person who created their account or through an account "
        "they created."
    )
    async def approve_grant(self, info: strawberry.Info, input: ApproveGrantInput) -> GrantPayload:
        view = await info.context.run(
            grant_admin.decide_grant,
            str(input.id),
            approve=True,
            expected_version=input.expected_version,
        )
        return GrantPayload(grant=Grant.from_view(view))

    @strawberry.mutation(description="Turn down a proposed grant.")
    async def reject_grant(self, info: strawberry.Info, input: ChangeGrantInput) -> GrantPayload:
        view = await info.context.run(
            grant_admin.decide_grant,
            str(input.id),
            approve=False,
            reason=input.reason,
            expected_version=input.expected_version,
        )
        return GrantPayload(grant=Grant.from_view(view))

    @strawberry.mutation(description="Pause an active grant; it can be resumed.")
    async def suspend_grant(self, info: strawberry.Info, input: ChangeGrantInput) -> GrantPayload:
        return await _change(info, input, "suspended")

    @strawberry.mutation(
        description="Put a suspended grant back in force, if the ceilings above still allow it."
    )
    async def resume_grant(self, info: strawberry.Info, input: ChangeGrantInput) -> GrantPayload:
        return await _change(info, input, "active")

    @strawberry.mutation(description="End a grant (or withdraw a proposal) for good.")
    async def revoke_grant(self, info: strawberry.Info, input: ChangeGrantInput) -> GrantPayload:
        return await _change(info, input, "revoked")

    @strawberry.mutation(
        description="Set what the departments below may grant to one outlet kind. Their grants that no "
        "longer fit are suspended and listed in the answer."
    )
    async def set_ceiling(self, info: strawberry.Info, input: SetCeilingInput) -> SetCeilingPayload:
        change = await info.context.run(
            ceilings.set_tenant_ceiling,
            input.tenant,
            input.outlet_kind,
            input.services,
            expected_version=input.expected_version,
        )
        return SetCeilingPayload(
            ceiling=Ceiling.from_view(change.ceiling),
            suspended_count=change.affected_count,
            suspended_grants=[Grant.from_view(v) for v in change.affected],
        )

    @strawberry.mutation(
        description="Grant one card service to many outlets in one step (all or nothing), e.g. to every "
        "grassroots platform of a city."
    )
    async def bulk_grant(self, info: strawberry.Info, input: BulkGrantInput) -> BulkGrantPayload:
        result = await info.context.run(
            bulk_grant.bulk_grant,
            bulk_grant.BulkGrantRequest(
                tenant=input.tenant,
                service=input.service,
                valid_from=input.valid_from,
                document_ref=input.document_ref,
                valid_until=input.valid_until,
                reason=input.reason,
                selector=_selector(input.selector),
                outlet_list=input.outlet_list,
            ),
        )
        return BulkGrantPayload.from_result(result)

    @strawberry.mutation(
        description="Approve at once every proposal a bulk grant created under two-person approval, "
        "putting them in force. The same rules as for one grant decide who may approve."
    )
    async def approve_bulk_grant(
        self, info: strawberry.Info, input: ApproveBulkGrantInput
    ) -> BulkGrantPayload:
        return await _decide_bulk(info, input, approve=True, reason=None)

    @strawberry.mutation(description="Turn down at once every proposal a bulk grant created.")
    async def reject_bulk_grant(self, info: strawberry.Info, input: RejectBulkGrantInput) -> BulkGrantPayload:
        return await _decide_bulk(info, input, approve=False, reason=input.reason)


async def _decide_bulk(
    info: strawberry.Info,
    input: ApproveBulkGrantInput | RejectBulkGrantInput,
    *,
    approve: bool,
    reason: str | None,
) -> BulkGrantPayload:
    result = await info.context.run(
        bulk_decisions.decide_bulk,
        bulk_decisions.BulkDecisionRequest(
            tenant=input.tenant,
            first_grant_id=str(input.first_grant_id),
            last_grant_id=str(input.last_grant_id),
            expected_count=input.expected_count,
            approve=approve,
            reason=reason,
        ),
    )
    return BulkGrantPayload.from_result(result)


async def _change(info: strawberry.Info, input: ChangeGrantInput, new_state: str) -> GrantPayload:
    view = await info.context.run(
        grant_admin.change_grant_state,
        str(input.id),
        new_state,
        reason=input.reason,
        expected_version=input.expected_version,
    )
    return GrantPayload(grant=Grant.from_view(view))
