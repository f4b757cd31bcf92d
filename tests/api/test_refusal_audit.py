"""Every refused mutation writes its denial event, whatever the refusal's code.

The security review (issue 11, item 9): a grant for another city's outlet (OUTSIDE_TENANT), a bulk
grant selecting another city, an outlet import with a foreign row, and a createOutlet or
createPrincipal colliding with a foreign id were refused as BAD_INPUT or CONFLICT and left no audit
event, while docs/api.md said every refusal is audited.
"""

from __future__ import annotations

import json

import pytest
from sqlmodel import select

from app.store.tables import AuditEvent, PersonalToken, Principal
from tests.api.conftest import error_code
from tests.api.grant_helpers import GRANT_SERVICE, GZ, JAN, SZ, grant_input

CREATE_OUTLET = "mutation($i: CreateOutletInput!) { createOutlet(input: $i) { outlet { id } } }"
CREATE_PRINCIPAL = "mutation($i: CreatePrincipalInput!) { createPrincipal(input: $i) { principal { name } } }"
BULK = "mutation($i: BulkGrantInput!) { bulkGrant(input: $i) { count } }"
IMPORT = "mutation($i: ImportOutletsInput!) { importOutlets(input: $i) { imported } }"

REFUSALS = [
    (
        "a grant to another city's outlet",
        GRANT_SERVICE,
        {"i": grant_input(outletId="sz-ft-huafu")},
        "BAD_INPUT",
        "grant.create",
    ),
    (
        "a bulk grant selecting another city",
        BULK,
        {
            "i": {
                "tenant": GZ,
                "service": "password_reset",
                "validFrom": JAN,
                "documentRef": "穗人社函〔2026〕12号",
                "selector": {"under": SZ},
            }
        },
        "BAD_INPUT",
        "grant.bulk_create",
    ),
    (
        "an outlet import with a foreign row",
        IMPORT,
        {
            "i": {
                "tenant": GZ,
                "csv": f"id,tenant,kind,name,bank,nbs_code,address\ngz-imp-x,{SZ},hrss_hall,深圳的厅,,,\n",
            }
        },
        "BAD_INPUT",
        "outlet.import",
    ),
    (
        "an outlet colliding with a foreign outlet's id",
        CREATE_OUTLET,
        {"i": {"id": "sz-ft-huafu", "tenant": GZ, "kind": "hrss_hall", "name": "重名"}},
        "CONFLICT",
        "outlet.create",
    ),
    (
        "a person colliding with a foreign login name",
        CREATE_PRINCIPAL,
        {"i": {"name": "sz.admin", "tenant": GZ, "role": "operator"}},
        "CONFLICT",
        "principal.create",
    ),
]


@pytest.mark.parametrize(
    ("what", "query", "variables", "code", "action"), REFUSALS, ids=[r[0] for r in REFUSALS]
)
async def test_each_refusal_leaves_its_denial_event(api, sessions, what, query, variables, code, action):
    async with sessions() as session:
        last = (await session.exec(select(AuditEvent.id).order_by(AuditEvent.id.desc()))).first()
    body = await api.gql(query, variables, who="gz_admin")
    assert error_code(body) == code, body
    async with sessions() as session:
        added = (await session.exec(select(AuditEvent).where(AuditEvent.id > last))).all()
        admin = (await session.exec(select(Principal).where(Principal.name == "gz.admin"))).one()
        token = (
            await session.exec(select(PersonalToken).where(PersonalToken.principal_id == admin.id))
        ).one()
    assert len(added) == 1, [(e.action, e.decision) for e in added]
    event = added[0]
    assert (event.actor, event.credential, event.action, event.decision) == (
        "principal:gz.admin",
        f"token:{token.id}",
        action,
        "deny",
    )
    # In the chain of the actor's own department, with what was refused and why.
    detail = json.loads(event.detail)
    assert event.tenant == GZ and detail["code"] == code and detail["why"]
