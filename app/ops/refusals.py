"""Every refused administrator use case leaves its denial event, whatever the refusal's code.

A use case refuses with `FORBIDDEN` (its reach check writes the denial event itself, through
`app.ops.auth.deny`), or with `BAD_INPUT`, `CONFLICT`, `NOT_FOUND`, `CEILING_EXCEEDED`… raised from
deep inside its transaction, which rolls back. `audited_use_case` writes the denial event of those
in a transaction of its own, so the audit trail holds every refused change (docs/api.md, Errors).
It also turns a lost compare-and-set (StaleDataError: a versioned row changed by a concurrent
request after this one read it, app/store/tables/common.version_column) into `CONFLICT`.

The event lands in the chain of the acting person's own department (their top-most role), where
that department's auditors look for what its people tried; its detail holds the code, the field
and the message.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel.ext.asyncio.session import AsyncSession

from app.domain.errors import DomainError
from app.ops.auth import Actor, home_tenant, record_denial
from app.ops.errors import OpsError, changed_meanwhile

P = ParamSpec("P")
T = TypeVar("T")


def audited_use_case(action: str) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Awaitable[T]]]:
    """Decorate a use case `fn(sessions, actor, ..., request_id=...)` whose refusals are `action`."""

    def decorate(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
        @functools.wraps(fn)
        async def run(
            sessions: async_sessionmaker[AsyncSession], actor: Actor, *args, request_id=None, **kwargs
        ) -> T:
            try:
                return await fn(sessions, actor, *args, request_id=request_id, **kwargs)
            except StaleDataError:
                error: OpsError | DomainError = changed_meanwhile()
            except OpsError as err:
                if err.audited:
                    raise
                error = err
            except DomainError as err:
                error = err
            await _record(sessions, actor, action, error, request_id)
            raise error

        return run

    return decorate


async def _record(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    action: str,
    error: OpsError | DomainError,
    request_id: str | None,
) -> None:
    if isinstance(error, OpsError):
        code, field = error.code, error.extensions.get("field")
        reason = error.extensions.get("reason")
    else:
        code, field, reason = "BAD_INPUT", error.field, error.code
    await record_denial(
        sessions,
        actor,
        action,
        action.partition(".")[0],
        "",
        home_tenant(actor),
        request_id=request_id,
        why=error.message,
        detail={"code": code, "field": field, "reason": str(reason) if reason is not None else None},
    )
    if isinstance(error, OpsError):
        error.audited = True
