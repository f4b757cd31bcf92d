"""Console sessions, kept in the database so that logout, deactivation, a new password and idleness end
them at once, on every worker. The browser holds a random token in a cookie; only its SHA-256 is kept.
Each request of an open session acts as its person with the roles they hold at that moment (a role
removed is gone from the next page), under the credential `session:<id>` in the audit trail.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.authz.admin import AdminGuard
from app.ops.auth import Actor, roles_held, top_most
from app.ops.errors import OpsError
from app.store.audit import append_event
from app.store.crypto import secret_hash
from app.store.tables import ConsoleSession, Principal

EXPIRED = "no console session, or it ended: log in again"


async def open_session(session: AsyncSession, principal_id: int, stage: str, address: str | None) -> str:
    """A new session at `stage`; its token (the cookie's value), shown this once."""
    token = secrets.token_urlsafe(32)
    session.add(
        ConsoleSession(token_hash=secret_hash(token), principal_id=principal_id, stage=stage, address=address)
    )
    return token


async def session_row(
    session: AsyncSession, token: str | None, *, stages: tuple[str, ...], lock: bool = True
) -> ConsoleSession:
    """The live session of `token` at one of `stages`, locked for this transaction unless `lock` is
    off (a page's read); UNAUTHENTICATED otherwise."""
    if not token or len(token) > 128:
        raise OpsError("UNAUTHENTICATED", EXPIRED)
    query = select(ConsoleSession).where(ConsoleSession.token_hash == secret_hash(token))
    found = (await session.exec(query.with_for_update() if lock else query)).first()
    if found is None or found.ended_at is not None or found.stage not in stages:
        raise OpsError("UNAUTHENTICATED", EXPIRED)
    return found


def _end(found: ConsoleSession, why: str) -> None:
    found.stage, found.ended_at, found.ended_why = "ended", datetime.now(UTC), why


async def home_chain(session: AsyncSession, principal_id: int | None) -> str:
    """The chain for events about a person: their top-most role's tenant (the root's if none)."""
    if principal_id is None:
        return "cn"
    return top_most(path for _, path in await roles_held(session, principal_id)) or "cn"


async def end_sessions(session: AsyncSession, principal_id: int, why: str) -> int:
    """End every live session of a person (deactivation, a new password); how many there were."""
    ended = await session.exec(
        update(ConsoleSession)
        .where(ConsoleSession.principal_id == principal_id, ConsoleSession.ended_at.is_(None))
        .values(stage="ended", ended_at=datetime.now(UTC), ended_why=why)
    )
    return ended.rowcount or 0


TOUCH_EVERY = timedelta(seconds=30)


async def console_actor(
    sessions: async_sessionmaker[AsyncSession], token: str | None, idle: timedelta
) -> Actor:
    """The person behind an open session, with the roles they hold now; the session's idle clock
    starts again. UNAUTHENTICATED when there is no such session, or it ended, or the person has been
    deactivated or holds no role any more (which ends it)."""
    # Read first: most pages write nothing, and a write transaction is, on SQLite, the database's one
    # writer (BEGIN IMMEDIATE), which partner calls' audit writes wait for.
    async with sessions() as session:
        found = await session_row(session, token, stages=("open",), lock=False)
        person = await session.get(Principal, found.principal_id)
        pairs = await roles_held(session, person.id)
    now = datetime.now(UTC)
    ending = (
        "deactivated"
        if not person.active
        else "no roles"
        if not pairs
        else "idle"
        if found.last_seen_at < now - idle
        else None
    )
    # The idle clock counts minutes: it is written at most every TOUCH_EVERY, not on every page.
    if ending is not None or found.last_seen_at < now - TOUCH_EVERY:
        async with sessions() as session, session.begin():
            row = await session.get(ConsoleSession, found.id, with_for_update=True)
            if ending is not None:
                _end(row, ending)
            elif row.ended_at is None:
                row.last_seen_at = now
            session.add(row)
    if ending is not None:  # ended in the transaction above, refused now
        raise OpsError("UNAUTHENTICATED", EXPIRED)
    return Actor(
        person.id,
        person.name,
        person.created_by,
        0,
        pairs,
        AdminGuard(f"principal:{person.name}", pairs),
        session_id=found.id,
    )


async def log_out(sessions: async_sessionmaker[AsyncSession], token: str | None) -> None:
    """End the session of `token`, audited; nothing happens for one already ended."""
    async with sessions() as session, session.begin():
        try:
            found = await session_row(session, token, stages=("enrol", "second_factor", "open"))
        except OpsError:
            return
        person = await session.get(Principal, found.principal_id)
        _end(found, "logout")
        session.add(found)
        await append_event(
            session,
            tenant=await home_chain(session, person.id),
            actor=f"principal:{person.name}",
            credential=f"session:{found.id}",
            action="login.logout",
            target_type="principal",
            target_id=person.name,
        )


def csrf_token(key: bytes, token: str) -> str:
    """The token every form of a session carries: derived from the session's own (HMAC), so it is
    kept nowhere and is worthless without the cookie it belongs to."""
    return hmac.new(key, b"csrf:" + token.encode(), hashlib.sha256).hexdigest()


def csrf_ok(key: bytes, token: str | None, sent: str | None) -> bool:
    return bool(token and sent) and hmac.compare_digest(csrf_token(key, token), sent)
