"""What partner card calls need of the database, one set per worker (built by the web app).

- `sessions`: transactions of card changes (the card locked, the change and its event together);
- `reader`: the card lookup every call starts with (app.store.point_reads);
- `audit`: events that stand alone — reads and refusals — committed in batches that each call
  awaits (app.store.audit_writer).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from app.store.audit_writer import AuditWriter
from app.store.point_reads import PointReader


@dataclass(frozen=True)
class CardStore:
    sessions: async_sessionmaker[AsyncSession]
    reader: PointReader
    audit: AuditWriter

    async def close(self) -> None:
        await self.audit.close()
        self.reader.close()
