"""The change stream: audit events of the caller's area as they commit, over graphql-transport-ws.

Authentication happens when the connection opens (its `connection_init` payload carries
`{"authorization": "Bearer <token>"}`); a connection without a valid token is closed (4403) before
any subscription. The legacy `graphql-ws` protocol is not offered: older strawberry releases skip
connection-time authentication there.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Annotated

import strawberry

from app.graphql.types.compliance import AuditEvent
from app.ops.compliance import events


@strawberry.type(
    description="Streams over WebSocket (graphql-transport-ws), authenticated when the connection opens."
)
class Subscription:
    @strawberry.subscription(
        description="Audit events of the chains you may audit (or of `tenant`'s), as they are committed by "
        "any worker; it ends when your token or your role does."
    )
    async def audit_events(
        self,
        info: strawberry.Info,
        tenant: Annotated[
            str | None, strawberry.argument(description="Only this department's chains and those below.")
        ] = None,
    ) -> AsyncGenerator[AuditEvent, None]:
        context = info.context
        stream = events.follow_events(
            context.sessions,
            context.fresh_actor,
            tenant,
            poll_seconds=context.settings.subscription_poll_seconds,
            request_id=context.request_id,
        )
        async for event in stream:
            yield AuditEvent.from_row(event)
