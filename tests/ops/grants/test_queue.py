"""The approval queue: proposals of a linked account are left to another approver (and counted),
those of an unrelated one are offered; a bulk grant's proposals come as one batch."""

from __future__ import annotations

from datetime import UTC, datetime

from app.ops.auth import authenticate
from app.ops.grants.admin import create_grant
from app.ops.grants.bulk import BulkGrantRequest, bulk_grant
from app.ops.grants.changes import GrantRequest
from app.ops.grants.queue import approval_queue
from app.ops.grants.selection import OutletSelector
from app.ops.principals.admin import create_principal
from app.ops.principals.credentials import create_principal_with_token
from app.ops.principals.tokens import issue_token
from app.ops.tenants.apply import apply_tenant_files

GZ = "cn/440000/440100"
JAN = datetime(2026, 1, 1, tzinfo=UTC)


async def actor_of(sessions, token: str):
    async with sessions() as session:
        return await authenticate(session, token)


async def created_by(sessions, admin, name: str, role: str):
    """A person the administrator creates, after they redeemed their enrolment token."""
    _, enrolment = await create_principal(sessions, admin, name=name, tenant=GZ, role=role)
    _, own = await issue_token(sessions, await actor_of(sessions, enrolment.token))
    return await actor_of(sessions, own.token)


async def test_linked_proposals_are_left_to_others_and_a_bulk_grant_is_one_batch(sessions, tenants_dir):
    await apply_tenant_files(sessions, tenants_dir)
    admin = await actor_of(
        sessions, (await create_principal_with_token(sessions, tenant_path=GZ, role="city_admin")).token
    )
    outsider = await actor_of(
        sessions, (await create_principal_with_token(sessions, tenant_path=GZ, role="operator")).token
    )
    # One administrator created both the approver and this operator: they are linked.
    approver = await created_by(sessions, admin, "gz.linked.approver", "approver")
    operator = await created_by(sessions, admin, "gz.linked.operator", "operator")
    request = GrantRequest(
        tenant=GZ,
        service="activation",
        valid_from=JAN,
        document_ref="穗人社函〔2026〕1号",
        outlet_kind="designated_pharmacy",
    )
    await create_grant(sessions, operator, request)
    unrelated = await create_grant(sessions, outsider, request)
    await bulk_grant(
        sessions,
        outsider,
        BulkGrantRequest(
            tenant=GZ,
            service="activation",
            valid_from=JAN,
            document_ref="穗人社函〔2026〕2号",
            selector=OutletSelector(under=GZ, kind="designated_pharmacy"),
        ),
    )
    queue = await approval_queue(sessions, approver)
    assert [view.grant.id for view in queue.proposals] == [unrelated.grant.id]
    (batch,) = queue.batches
    assert (
        batch.count >= 2
        and batch.proposed_by == outsider.name
        and batch.document_ref == "穗人社函〔2026〕2号"
    )
    assert queue.left_to_others == 1  # the linked operator's proposal
