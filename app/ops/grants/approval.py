"""Who may approve a proposal: never one person holding both ends.

Two-person approval is about two *people*, so an approval is refused whenever one person could
have held both credentials: the approver and the proposer are the same principal, or they are linked
through account creation. Whoever creates an account receives its first (enrolment) credential, so
an account's creator, and that creator's creator, and so on, could act as it. The approver and the
proposer are linked when one of them lies on the other's chain of creators, or when their chains
meet (they share a creator, directly or further up). Accounts made by the server bootstrap (`ssc
tokens create`) have no creator. A department therefore has its proposers and its approvers created
by different account administrators, each bootstrapped or created along separate lines
(docs/api.md, Two-person approval).
"""

from __future__ import annotations

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.ops.auth import Actor
from app.store.tables import Principal

MAX_CREATOR_CHAIN = 64


async def creator_chain(session: AsyncSession, principal_id: int) -> list[int]:
    """The principal, the one who created it, the one who created that one, and so on."""
    chain: list[int] = []
    current: int | None = principal_id
    while current is not None and current not in chain and len(chain) < MAX_CREATOR_CHAIN:
        chain.append(current)
        current = (await session.exec(select(Principal.created_by).where(Principal.id == current))).first()
    return chain


async def approval_refusal(
    session: AsyncSession, actor: Actor, proposer: int | None, what: str
) -> str | None:
    """Why `actor` may not approve `what`, proposed by `proposer` (see the module docstring), or None.

    The answer names the link that stands in the way, so the department knows whom to ask."""
    if proposer is None:
        return None
    if proposer == actor.principal_id:
        why = "you proposed it"
    else:
        mine = await creator_chain(session, actor.principal_id)
        theirs = await creator_chain(session, proposer)
        common = next((pid for pid in mine if pid in theirs), None)
        if common is None:
            return None
        names = await _names(session, {proposer, common})
        if common == proposer:
            why = (
                f"its proposer {names[proposer]} created your account, directly or through accounts "
                "they created"
            )
        elif common == actor.principal_id:
            why = (
                f"you created the account of its proposer {names[proposer]}, directly or through "
                "accounts you created"
            )
        else:
            why = (
                f"you and its proposer {names[proposer]} were both created through accounts of "
                f"{names[common]}, who could have held both credentials"
            )
    return f"you may not approve {what}: {why}; another person must approve it"


async def _names(session: AsyncSession, ids: set[int]) -> dict[int, str]:
    return dict((await session.exec(select(Principal.id, Principal.name).where(Principal.id.in_(ids)))).all())


async def approvable(session: AsyncSession, actor: Actor, proposers: set[int | None]) -> set[int | None]:
    """The proposers among `proposers` whose proposals `actor` may approve (the rule of
    approval_refusal, each creator chain read once): an approval queue lists only those."""
    mine = await creator_chain(session, actor.principal_id)
    fit: set[int | None] = set()
    for proposer in proposers:
        if proposer is None:
            fit.add(None)
        elif proposer != actor.principal_id and not set(mine) & set(await creator_chain(session, proposer)):
            fit.add(proposer)
    return fit
