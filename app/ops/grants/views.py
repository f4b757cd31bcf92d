"""Grants as the API shows them: the row, its tenant's path and the names of the people involved."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import aliased
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.store.tables import Grant, Principal, Tenant

_Proposer = aliased(Principal)


_Approver = aliased(Principal)


@dataclass(frozen=True)
class GrantView:
    """A grant with what the API shows beside it: its tenant's path and the people's names."""

    grant: Grant
    tenant_path: str
    proposed_by: str | None
    approved_by: str | None


def views_query():
    return (
        select(Grant, Tenant.path, _Proposer.name, _Approver.name)
        .join(Tenant, Tenant.id == Grant.tenant_id)
        .outerjoin(_Proposer, _Proposer.id == Grant.proposed_by)
        .outerjoin(_Approver, _Approver.id == Grant.approved_by)
    )


async def view(session: AsyncSession, grant_id: int) -> GrantView | None:
    row = (await session.exec(views_query().where(Grant.id == grant_id))).first()
    return GrantView(*row) if row else None


async def views(session: AsyncSession, grant_ids: Iterable[int]) -> list[GrantView]:
    ids = list(grant_ids)
    if not ids:
        return []
    rows = (await session.exec(views_query().where(Grant.id.in_(ids)).order_by(Grant.id))).all()
    return [GrantView(*row) for row in rows]


async def principal_names(sessions: async_sessionmaker[AsyncSession], ids: Iterable[int]) -> dict[int, str]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    async with sessions() as session:
        rows = (
            await session.exec(select(Principal.id, Principal.name).where(Principal.id.in_(wanted)))
        ).all()
    return dict(rows)
