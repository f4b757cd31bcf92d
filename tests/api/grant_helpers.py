"""Grant helpers shared by test_grants.py, test_approval.py, test_bulk_grant.py and test_ceilings.py:
the grant mutations, who must be refused, people with roles, the state a refusal must leave alone and
the business policy a fresh worker would load."""

from __future__ import annotations

from sqlmodel import func, select

from app.authz.policy_state import BusinessPolicy
from app.authz.sync import PolicyTailer
from app.ops.principals.credentials import create_principal_with_token
from app.store.tables import AuditEvent, Ceiling, Grant, PolicyLine, Principal, RoleAssignment, Tenant

GD = "cn/440000"
GZ = "cn/440000/440100"
SZ = "cn/440000/440300"
TH = "cn/440000/440100/440106"
NOW = "2026-06-01T00:00:00Z"
JAN = "2026-01-01T00:00:00+00:00"

GRANT_FIELDS = (
    "{ id tenant outletId outletKind service validFrom validUntil documentRef reason state stateReason"
    " proposedBy approvedBy version createdAt updatedAt }"
)
GRANT_SERVICE = "mutation($i: GrantServiceInput!) { grantService(input: $i) { grant " + GRANT_FIELDS + " } }"


def _change_mutation(name: str) -> str:
    return "mutation($i: ChangeGrantInput!) { " + name + "(input: $i) { grant " + GRANT_FIELDS + " } }"


SUSPEND, RESUME, REVOKE, REJECT = map(
    _change_mutation, ("suspendGrant", "resumeGrant", "revokeGrant", "rejectGrant")
)
APPROVE = "mutation($i: ApproveGrantInput!) { approveGrant(input: $i) { grant " + GRANT_FIELDS + " } }"

# Who must be refused a change in Guangzhou: a sibling city, a county acting upward, an auditor
# of the city itself, and a caller without a token.
OUTSIDERS = [
    ("sz_admin", "FORBIDDEN"),
    ("th_admin", "FORBIDDEN"),
    ("gz_auditor", "FORBIDDEN"),
    (None, "UNAUTHENTICATED"),
]


def grant_input(**kw) -> dict:
    return {
        "tenant": GZ,
        "outletId": "gz-th-wushan",
        "service": "password_change",
        "validFrom": JAN,
        "documentRef": "穗人社函〔2026〕7号",
        **kw,
    }


async def add_person(
    sessions,
    name: str,
    tenant: str,
    role: str,
    *,
    created_by: str | None = None,
    more_roles=(),
    days: int = 90,
) -> str:
    """A person with a role (and maybe more, and a creator); returns their token."""
    issued = await create_principal_with_token(sessions, tenant_path=tenant, role=role, name=name, days=days)
    async with sessions() as session, session.begin():
        person = await session.get(Principal, issued.principal_id)
        if created_by is not None:
            creator = (await session.exec(select(Principal).where(Principal.name == created_by))).one()
            person.created_by = creator.id
        for extra_role, extra_tenant in more_roles:
            where = (await session.exec(select(Tenant).where(Tenant.path == extra_tenant))).one()
            session.add(RoleAssignment(principal_id=person.id, tenant_id=where.id, role=extra_role))
    return issued.token


async def db_state(sessions) -> dict:
    """Grants, ceilings and policy lines as they are, and the audit events (id, actor, action, decision)."""
    async with sessions() as session:
        return {
            "grants": sorted(
                (g.id, g.state, g.version, g.state_reason, g.approved_by)
                for g in (await session.exec(select(Grant))).all()
            ),
            "ceilings": sorted(
                (c.tenant_id, c.outlet_kind, c.services, c.version)
                for c in (await session.exec(select(Ceiling))).all()
            ),
            "lines": (await session.exec(select(func.count()).select_from(PolicyLine))).one(),
            "events": [
                (e.id, e.actor, e.action, e.decision)
                for e in (await session.exec(select(AuditEvent).order_by(AuditEvent.id))).all()
            ],
        }


async def business(sessions, db_url) -> BusinessPolicy:
    """The business policy as a freshly started worker would load it from the database."""
    state = BusinessPolicy()
    await PolicyTailer(sessions, load=state.load, apply=state.apply, database_url=db_url).load()
    return state


def allowed(state: BusinessPolicy, outlet: str, outlet_tenant: str, service: str) -> bool:
    """May the outlet perform the service on a card of its own tenant now?"""
    return state.enforcer.enforce(f"outlet:{outlet}", outlet_tenant, outlet_tenant, service, NOW)


async def create(api, who="gz_admin", **kw) -> dict:
    body = await api.gql(GRANT_SERVICE, {"i": grant_input(**kw)}, who=who)
    assert "errors" not in body, body
    return body["data"]["grantService"]["grant"]


async def call(api, query: str, variables: dict, who: str | None) -> dict:
    return await api.gql(query, variables, who=who) if who else await api.gql(query, variables)


def change(grant: dict | str, version: int, reason: str = "检查") -> dict:
    gid = grant if isinstance(grant, str) else grant["id"]
    return {"i": {"id": gid, "reason": reason, "expectedVersion": version}}
