"""Point reads on the partner request path: the latest commit, values typed as the ORM types them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, update
from sqlmodel import select

from app.ops.partner_keys.keys import create_partner_key
from app.ops.tenants.apply import apply_tenant_files
from app.store.point_reads import PointReader
from app.store.tables import PartnerKey

BY_ID = select(PartnerKey.id, PartnerKey.outlet_id, PartnerKey.expires_at, PartnerKey.revoked_at).where(
    PartnerKey.id == bindparam("id")
)


async def test_reads_see_each_commit_and_type_timestamps_like_the_orm(sessions, tenants_dir):
    await apply_tenant_files(sessions, tenants_dir)
    async with sessions() as session, session.begin():
        issued = await create_partner_key(session, "gz-th-pharm-dasenlin", days=30, actor="test")
    reader = PointReader(sessions.kw["bind"])
    try:
        [(key_id, outlet, expires_at, revoked_at)] = await reader.all(BY_ID, {"id": issued.key_id})
        assert (key_id, outlet, revoked_at) == (issued.key_id, "gz-th-pharm-dasenlin", None)
        assert expires_at == issued.expires_at and expires_at.tzinfo is UTC
        revoked = datetime.now(UTC).replace(microsecond=0)
        async with sessions() as session, session.begin():
            await session.exec(update(PartnerKey).where(PartnerKey.id == key_id).values(revoked_at=revoked))
        # No snapshot is held between reads: the next read sees the commit.
        [(*_, revoked_at)] = await reader.all(BY_ID, {"id": issued.key_id})
        assert revoked_at == revoked
        assert await reader.all(BY_ID, {"id": issued.key_id + 1}) == []
        assert expires_at - revoked > timedelta(days=29)
    finally:
        await reader.close()
