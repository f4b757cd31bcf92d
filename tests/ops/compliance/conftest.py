"""A province auditor of Guangdong on the demo tree, for the compliance use cases."""

from __future__ import annotations

import pytest

from app.ops.auth import authenticate
from app.ops.principals.credentials import create_principal_with_token
from app.ops.tenants.apply import apply_tenant_files


@pytest.fixture
async def auditor(sessions, tenants_dir):
    await apply_tenant_files(sessions, tenants_dir)
    issued = await create_principal_with_token(sessions, tenant_path="cn/440000", role="auditor")
    async with sessions() as session:
        return await authenticate(session, issued.token)
