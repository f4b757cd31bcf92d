"""The per-request context: a session factory (never one shared session), the request id and the
caller, authenticated once on first use.

graphql-core resolves sibling fields concurrently, so each resolver opens its own session.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import Request

from app.authz.policy_state import BusinessPolicy
from app.authz.sync import PolicyTailer
from app.ops.auth import Actor, PartnerCaller, authenticate
from app.ops.cards.store import CardStore
from app.ops.partner_keys.keys import authenticate_partner
from app.ops.partner_keys.rate_limit import PartnerLimiter
from app.settings import Settings

T = TypeVar("T")


def bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


@dataclass
class Context:
    request: Request
    request_id: str
    # This worker's in-memory business policy (kept current by the policy tailer).
    business: BusinessPolicy
    # This worker's card lookup and audit writer for partner calls.
    cards: CardStore
    # This worker's count of partner calls per key.
    limiter: PartnerLimiter
    # The settings the app was created with (not necessarily the environment's).
    settings: Settings
    # What keeps `business` in step with the change log; its position is the worker's revision.
    policy: PolicyTailer
    # The revision this request's answer reflects: the worker's, once it caught up with a change the
    # request made (Context.run).
    revision: int = 0
    # The `connection_init` payload of a WebSocket connection (strawberry sets it).
    connection_params: dict[str, Any] | None = None
    _actor: asyncio.Task | None = field(default=None, repr=False)
    _partner: PartnerCaller | None = field(default=None, repr=False)

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        """The worker's session factory (one session per resolver, never one shared)."""
        return self.cards.sessions

    async def actor(self) -> Actor:
        """The authenticated person; raises UNAUTHENTICATED. Looked up once per request."""
        if self._actor is None:
            self._actor = asyncio.ensure_future(self._authenticate())
        return await self._actor

    async def run(self, use_case: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """Run an administrator's use case as this request's person (UNAUTHENTICATED first, without
        one): `use_case(sessions, actor, *args, request_id=..., **kwargs)`, the shape of every use
        case in app/ops that a person performs.

        Before the answer goes out, the worker applies what the use case committed (and anything
        committed before it) to its policy index: a change the caller is told succeeded is in force
        for their very next request on this worker, and the answer's revision holds it."""
        actor = await self.actor()
        result = await use_case(self.sessions, actor, *args, request_id=self.request_id, **kwargs)
        await self.policy.catch_up()
        self.revision = self.policy.revision
        return result

    async def read(self, use_case: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """Run a read of app/ops as this request's person: the same shape as `run`, nothing to apply.
        Query resolvers and DataLoaders read through here, so none of them picks the caller itself."""
        actor = await self.actor()
        return await use_case(self.sessions, actor, *args, request_id=self.request_id, **kwargs)

    def _token(self) -> str | None:
        if self.connection_params is not None:
            scheme, _, token = str(self.connection_params.get("authorization", "")).partition(" ")
            return token.strip() or None if scheme.lower() == "bearer" else None
        return bearer_token(self.request)

    async def _authenticate(self) -> Actor:
        async with self.sessions() as session:
            return await authenticate(session, self._token())

    async def fresh_actor(self) -> Actor:
        """The person looked up again (not the one remembered): a long-lived stream asks before every
        poll, so a revoked token, a deactivation or a removed role ends it."""
        return await self._authenticate()

    async def partner(self) -> PartnerCaller:
        """The outlet a partner system acts as (X-Api-Key); raises UNAUTHENTICATED.

        Not shared through a task like `actor`: a verified key is answered from the worker's cache
        without awaiting anything, so sibling fields that both miss it cost one extra point read.
        """
        if self._partner is None:
            key = self.request.headers.get("x-api-key")
            trust = self.settings.partner_key_cache_seconds
            self._partner = await authenticate_partner(self.cards.reader, key, trust_seconds=trust)
        return self._partner

    async def partner_call(self) -> PartnerCaller:
        """The caller of one partner field: authenticated (once per request) and counted against its
        key's rate limit (once per field); raises UNAUTHENTICATED or RATE_LIMITED."""
        caller = await self.partner()
        await self.limiter.check_call(caller)
        return caller
