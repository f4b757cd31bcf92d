"""A person's own tokens, through the API: issuing one to oneself, and revoking tokens.

Nobody obtains a usable credential of another person (docs/api.md, Credentials): `issue_token` is for
the caller only, and a token it issues may not outlive the token that calls (the one-time enrolment
token excepted, which exists to obtain the first one). An administrator revokes the tokens of a
person they manage, never mints for them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.ops.auth import Actor, home_tenant
from app.ops.errors import OpsError
from app.ops.principals.credentials import SHOWN_CHARS, IssuedToken, add_token
from app.ops.principals.reach import (
    Refused,
    audited_refusals,
    days_input,
    deny_refused,
    home_of,
    load_principal,
    manages,
    name_input,
    roles_of,
)
from app.ops.principals.views import PrincipalView, view_of
from app.ops.refusals import audited_use_case
from app.store.audit import append_event
from app.store.tables import PersonalToken, Principal

DEFAULT_TOKEN_DAYS = 90


def _token_expiry(actor: Actor, days: int | None) -> datetime:
    """When a token the actor issues for themself expires: `days` from now (default 90), but never
    after the acting token, unless that is the one-time enrolment token it replaces."""
    wanted = datetime.now(UTC) + timedelta(
        days=days_input(DEFAULT_TOKEN_DAYS if days is None else days, "days")
    )
    limit = None if actor.enrolling else actor.token_expires_at
    if limit is None or wanted <= limit:
        return wanted
    if days is None:
        return limit
    raise OpsError(
        "BAD_INPUT",
        f"your token expires at {limit.isoformat(timespec='seconds')}; a token it issues may not outlive it",
        field="days",
    )


@audited_use_case("principal.issue_token")
async def issue_token(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    *,
    name: str | None = None,
    days: int | None = None,
    request_id: str | None = None,
) -> tuple[PrincipalView, IssuedToken]:
    """A new bearer token for yourself, shown this once; issued with your one-time enrolment token,
    it replaces that token (which is revoked). Nobody obtains a token for another person: an
    administrator revokes another person's tokens or deactivates them, never mints for them."""
    if name is not None and name_input(name) != actor.name:
        refused = Refused(
            "principal.issue_token",
            name,
            home_tenant(actor),
            "a token is issued only to its owner: the person signs in and calls issueToken themself",
        )
        raise await deny_refused(sessions, actor, refused, request_id)
    expires_at = _token_expiry(actor, days)
    async with sessions() as session, session.begin():
        principal, roles = await load_principal(session, actor.name)
        if principal is None or principal.id != actor.principal_id or not principal.active:
            raise OpsError("UNAUTHENTICATED", "unknown, expired or revoked token")
        issued = await add_token(session, principal, expires_at)
        replaced = None
        if actor.enrolling:
            replaced = await session.get(PersonalToken, actor.token_id, with_for_update=True)
            if replaced is None or replaced.revoked_at is not None:  # redeemed by a concurrent call
                raise OpsError("UNAUTHENTICATED", "unknown, expired or revoked token")
            replaced.revoked_at = datetime.now(UTC)
        await append_event(
            session,
            tenant=home_of(actor, roles),
            actor=actor.label,
            credential=actor.credential,
            action="principal.issue_token",
            target_type="principal",
            target_id=actor.name,
            request_id=request_id,
            detail={
                "token_id": issued.token_id,
                "token_prefix": issued.prefix,
                "expires_at": issued.expires_at.isoformat(),
                "replaces_enrolment_token": replaced.id if replaced else None,
            },
        )
        return await view_of(session, actor, principal.id), issued


@audited_use_case("principal.revoke_token")
async def revoke_token(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    *,
    prefix: str | None = None,
    token_id: int | None = None,
    owner_name: str | None = None,
    request_id: str | None = None,
) -> PrincipalView:
    """Revoke one token, named by its id or its shown prefix: your own, or one of a person you manage.
    With `owner_name`, another person's token is answered as a missing one (the console revokes tokens
    from the owner's page)."""
    if (prefix is None) == (token_id is None):
        raise OpsError("BAD_INPUT", "name the token by its id or by its prefix, not both", field="id")
    if prefix is not None and not 1 <= len(prefix) <= SHOWN_CHARS:
        raise OpsError("BAD_INPUT", f"a token prefix has at most {SHOWN_CHARS} characters", field="prefix")
    action = "principal.revoke_token"
    shown = prefix if prefix is not None else f"token {token_id}"
    async with audited_refusals(sessions, actor, request_id), sessions() as session, session.begin():
        match = PersonalToken.prefix == prefix if prefix is not None else PersonalToken.id == token_id
        candidates = (
            await session.exec(
                select(PersonalToken, Principal)
                .join(Principal, Principal.id == PersonalToken.principal_id)
                .where(match)
                .with_for_update()
            )
        ).all()
        owners = await roles_of(session, [p.id for _, p in candidates])
        mine = [
            (t, p)
            for t, p in candidates
            if (p.id == actor.principal_id or manages(actor, owners[p.id])) and owner_name in (None, p.name)
        ]
        if not mine:
            raise Refused(action, shown, home_of(actor), f"no token {shown} within your reach")
        if len(mine) > 1:
            raise OpsError("CONFLICT", f"several tokens start with {prefix}; give its id", field="prefix")
        token, owner = mine[0]
        if token.revoked_at is not None:
            raise OpsError("CONFLICT", f"token {token.prefix} is already revoked", field="id")
        token.revoked_at = datetime.now(UTC)
        await append_event(
            session,
            tenant=home_of(actor, owners[owner.id]),
            actor=actor.label,
            credential=actor.credential,
            action=action,
            target_type="principal",
            target_id=owner.name,
            request_id=request_id,
            detail={"token_id": token.id, "token_prefix": token.prefix},
        )
        return await view_of(session, actor, owner.id)
