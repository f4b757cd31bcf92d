"""Auditors read; they change nothing. Every administrative mutation of the schema, called with an
auditor's token on things in the auditor's own area, is FORBIDDEN and leaves nothing behind but its
denial event; the partner mutations (cards) do not take a person's token at all."""

from __future__ import annotations

from graphql import GraphQLEnumType, GraphQLInputObjectType, GraphQLList, GraphQLNonNull, GraphQLScalarType
from sqlalchemy import func
from sqlmodel import select

from app.graphql.schema import build_schema
from app.store.tables import AuditEvent
from tests.api.conftest import error_code
from tests.api.grant_helpers import GRANT_SERVICE, grant_input

# Values an administrator of Guangzhou would send, by field name: what makes each call valid, so
# that only the caller's role can refuse it.
VALUES = {
    "tenant": "cn/440000/440100",
    "outletId": "gz-th-wushan",
    "outlet": "gz-th-wushan",
    "outletKind": "grassroots_platform",
    "kind": "grassroots_platform",
    "service": "password_change",
    "services": ["password_change"],
    "validFrom": "2026-01-01T00:00:00+08:00",
    "documentRef": "穗人社函〔2026〕9号",
    "reason": "审计员不应能做",
    "name": "gz.admin",
    "displayName": "广州管理员",
    "role": "operator",
    "csv": "id,tenant,kind,name\ngz-new-1,cn/440000/440100,hrss_hall,新网点\n",
    "outletIds": ["gz-th-wushan"],
    "twoPersonApproval": True,
}
# Optional fields some mutations need one of: gz.admin's token (the second issued by the fixture).
OVERRIDES = {"revokeToken": {"id": 2}}


def value_for(name: str, kind, ids: dict) -> object:
    if isinstance(kind, GraphQLNonNull):
        return value_for(name, kind.of_type, ids)
    if name in ids:
        return ids[name]
    if name in VALUES:
        return VALUES[name]
    if isinstance(kind, GraphQLList):
        return [value_for(name, kind.of_type, ids)]
    if isinstance(kind, GraphQLEnumType):
        return next(iter(kind.values))
    if isinstance(kind, GraphQLInputObjectType):
        return {
            field: value_for(field, spec.type, ids)
            for field, spec in kind.fields.items()
            if isinstance(spec.type, GraphQLNonNull) or field in VALUES
        }
    assert isinstance(kind, GraphQLScalarType)
    return {"Int": 1, "Boolean": False, "ID": "1", "DateTime": "2026-03-03T00:00:00+08:00"}.get(
        kind.name, "x"
    )


async def counts(sessions) -> tuple[int, int]:
    async with sessions() as session:
        events = (await session.exec(select(func.count()).select_from(AuditEvent))).one()
        denials = (
            await session.exec(
                select(func.count()).select_from(AuditEvent).where(AuditEvent.decision == "deny")
            )
        ).one()
    return events, denials


async def test_every_mutation_is_forbidden_to_an_auditor(api, sessions, db_url):
    made = await api.gql(GRANT_SERVICE, {"i": grant_input()}, who="gz_admin")
    grant = made["data"]["grantService"]["grant"]
    ids = {"id": grant["id"], "expectedVersion": grant["version"]}
    key = await api.gql(
        "mutation($i: CreatePartnerKeyInput!) { createPartnerKey(input: $i) { prefix } }",
        {"i": {"outletId": "gz-th-wushan"}},
        who="gz_admin",
    )
    overrides = {**OVERRIDES, "revokePartnerKey": {"prefix": key["data"]["createPartnerKey"]["prefix"]}}
    schema = build_schema()._schema
    assert schema.mutation_type is not None
    before_tables = await table_counts(db_url)
    refused, partner = [], []
    for name, spec in schema.mutation_type.fields.items():
        arg = spec.args["input"]
        query = f"mutation($i: {arg.type}) {{ {name}(input: $i) {{ __typename }} }}"
        variables = {"i": value_for("input", arg.type, ids) | overrides.get(name, {})}
        events, denials = await counts(sessions)
        body = await api.gql(query, variables, who="gz_auditor")
        code = error_code(body)
        after_events, after_denials = await counts(sessions)
        if str(spec.type).startswith("CardService"):
            assert code == "UNAUTHENTICATED", (name, body)  # partners only, with an X-Api-Key
            partner.append(name)
            continue
        assert code == "FORBIDDEN", (name, variables, body)
        assert body["data"] is None
        # Its denial event, and nothing else.
        assert (after_events - events, after_denials - denials) == (1, 1), name
        refused.append(name)
    assert len(refused) >= 22 and len(partner) >= 9
    after_tables = await table_counts(db_url)
    changed = {t for t in before_tables if before_tables[t] != after_tables[t]}
    assert changed == {"audit_event"}, changed


async def table_counts(db_url: str) -> dict[str, int]:
    from sqlalchemy import inspect

    from app.store.db import make_sync_engine

    engine = make_sync_engine(db_url)
    with engine.connect() as connection:
        names = inspect(connection).get_table_names()
        found = {n: connection.exec_driver_sql(f'SELECT count(*) FROM "{n}"').scalar() for n in names}
    engine.dispose()
    return found
