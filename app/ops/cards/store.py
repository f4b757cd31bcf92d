"""What partner card calls need of the database, one set per worker (built by the web app).

- `sessions`: transactions of card changes (the card locked, the change and its event together);
- `reader`: the card lookup every call starts with (app.store.point_reads);
- `audit`: events that stand alone — reads and refusals — committed in batches that each call
  awaits (app.store.audit_writer);
- `cipher`: the keyed hashes cards are found by (and idempotency inputs are fingerprinted with),
  from the keys of the app's settings.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from app.store.audit_writer import AuditWriter
from app.store.crypto import FieldCipher
from app.store.point_reads import PointReader


@dataclass(frozen=True)
class CardStore:
    sessions: async_sessionmaker[AsyncSession]
    reader: PointReader
    audit: AuditWriter
    cipher: FieldCipher

    async def close(self) -> None:
        await self.audit.close()
        await self.reader.close()
