"""The per-request context: a session factory (never one shared session) and the request id.

graphql-core resolves sibling fields concurrently, so each resolver opens its own session.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import Request


@dataclass
class Context:
    request: Request
    sessions: async_sessionmaker[AsyncSession]
    request_id: str
