"""Personal tokens handed out on the server: shown once, stored hashed; refusals write nothing."""

import pytest
from sqlmodel import select

from app.domain.errors import DomainError
from app.ops.principals.credentials import TOKEN_PREFIX, create_principal_with_token
from app.ops.tenants.apply import apply_tenant_files
from app.store.crypto import secret_hash
from app.store.tables import PersonalToken, Principal, RoleAssignment


async def test_token_is_shown_once_and_stored_hashed(sessions, tenants_dir):
    await apply_tenant_files(sessions, tenants_dir)
    issued = await create_principal_with_token(
        sessions, tenant_path="cn/440000/440100", role="city_admin", name="zhang.wei"
    )
    assert issued.token.startswith(TOKEN_PREFIX) and len(issued.token) > 40
    async with sessions() as session:
        stored = (await session.exec(select(PersonalToken))).one()
        role = (await session.exec(select(RoleAssignment))).one()
        principal = (await session.exec(select(Principal))).one()
    assert stored.token_hash == secret_hash(issued.token)
    assert issued.token not in (stored.token_hash, stored.prefix)
    assert (principal.name, role.role) == ("zhang.wei", "city_admin")


@pytest.mark.parametrize(
    ("tenant", "role", "code"),
    [
        ("cn/440000/440100", "county_admin", "ROLE_LEVEL"),
        ("cn/440000/440100", "superuser", "UNKNOWN_ROLE"),
        ("cn/440000/449900", "operator", "UNKNOWN_TENANT"),
        ("cn/44", "operator", "BAD_TENANT_PATH"),
    ],
)
async def test_token_refusals_write_nothing(sessions, tenants_dir, tenant, role, code):
    await apply_tenant_files(sessions, tenants_dir)
    with pytest.raises(DomainError) as refused:
        await create_principal_with_token(sessions, tenant_path=tenant, role=role)
    assert refused.value.code == code
    async with sessions() as session:
        assert (await session.exec(select(Principal))).all() == []
