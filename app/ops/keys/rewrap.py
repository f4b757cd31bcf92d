"""`ssc keys rewrap`: move every stored protected value to the current keys, batch by batch, while
the platform serves (docs/operations.md, Key rotation).

A card's ID and bank card numbers are opened with whichever data key sealed them, sealed again under
the current data key if another one had, and hashed again if the lookup key changed; a person's TOTP
secret likewise. Each batch is one transaction and writes compare-and-set on the values it read, so
a card changed meanwhile (its new values already under the current keys) is left as it is. Running
it again only finds what is left: it can be stopped and resumed. A value no configured key opens is
reported, never changed; the run then ends with an error and the old keys must stay configured.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from sqlalchemy import and_, bindparam, update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.ops.cards.lookup import BANK_CONTEXT, ID_CONTEXT
from app.ops.principals.logins import TOTP_CONTEXT
from app.store.audit import append_event
from app.store.crypto import FieldCipher
from app.store.tables import Card, PrincipalLogin

ACTOR = "cli:keys-rewrap"
BATCH = 2_000
UNREADABLE_SHOWN = 20


@dataclass
class RewrapSummary:
    cards: int = 0
    cards_rewrapped: int = 0
    secrets: int = 0
    secrets_rewrapped: int = 0
    unreadable: list[str] = field(default_factory=list)  # "card 12", "totp of principal 3"
    unreadable_count: int = 0

    def cannot_open(self, what: str) -> None:
        self.unreadable_count += 1
        if len(self.unreadable) < UNREADABLE_SHOWN:
            self.unreadable.append(what)


class _Unreadable(Exception):
    pass


def _resealed(cipher: FieldCipher, blob: bytes | None, context: bytes) -> tuple[bytes | None, str | None]:
    """(the value sealed under the current key, or the blob itself if it already is; its clear text)."""
    if blob is None:
        return None, None
    try:
        clear, current = cipher.opened(blob, context=context)
    except InvalidTag:
        raise _Unreadable from None
    return (blob if current else cipher.encrypt(clear, context=context)), clear


_CARDS = Card.__table__
# Core, not ORM: an executemany of compare-and-set updates, the cards are not loaded as objects.
_CARD_UPDATE = (
    update(_CARDS)
    .where(
        and_(
            _CARDS.c.id == bindparam("b_id"),
            _CARDS.c.id_number_enc == bindparam("old_id_enc"),
            _CARDS.c.bank_card_enc.is_not_distinct_from(bindparam("old_bank_enc")),
        )
    )
    .values(
        id_number_enc=bindparam("id_enc"),
        id_number_hash=bindparam("id_hash"),
        bank_card_enc=bindparam("bank_enc"),
        bank_card_hash=bindparam("bank_hash"),
    )
)


async def _card_batch(
    session: AsyncSession, cipher: FieldCipher, after: int, summary: RewrapSummary
) -> int | None:
    """Rewrap the next batch of cards after id `after`; the last id seen, None when there are none."""
    rows = (
        await session.exec(
            select(Card.id, Card.id_number_enc, Card.id_number_hash, Card.bank_card_enc, Card.bank_card_hash)
            .where(Card.id > after)
            .order_by(Card.id)
            .limit(BATCH)
        )
    ).all()
    if not rows:
        return None
    changes = []
    for card_id, id_enc, id_hash, bank_enc, bank_hash in rows:
        summary.cards += 1
        try:
            new_id_enc, id_clear = _resealed(cipher, id_enc, ID_CONTEXT)
            new_bank_enc, bank_clear = _resealed(cipher, bank_enc, BANK_CONTEXT)
        except _Unreadable:
            summary.cannot_open(f"card {card_id}")
            continue
        new_id_hash = cipher.lookup_hash(id_clear, context=ID_CONTEXT)
        new_bank_hash = None if bank_clear is None else cipher.lookup_hash(bank_clear, context=BANK_CONTEXT)
        if (new_id_enc, new_id_hash, new_bank_enc, new_bank_hash) != (id_enc, id_hash, bank_enc, bank_hash):
            changes.append(
                {
                    "b_id": card_id,
                    "old_id_enc": id_enc,
                    "old_bank_enc": bank_enc,
                    "id_enc": new_id_enc,
                    "id_hash": new_id_hash,
                    "bank_enc": new_bank_enc,
                    "bank_hash": new_bank_hash,
                }
            )
    if changes:
        await (await session.connection()).execute(_CARD_UPDATE, changes)
        summary.cards_rewrapped += len(changes)
    return rows[-1][0]


async def _totp_secrets(session: AsyncSession, cipher: FieldCipher, summary: RewrapSummary) -> None:
    """The people's TOTP secrets: a few thousand at most, in one transaction."""
    logins = (
        await session.exec(
            select(PrincipalLogin).where(PrincipalLogin.totp_secret.is_not(None)).with_for_update()
        )
    ).all()
    for login in logins:
        summary.secrets += 1
        try:
            sealed, _ = _resealed(cipher, login.totp_secret, TOTP_CONTEXT)
        except _Unreadable:
            summary.cannot_open(f"the TOTP secret of principal {login.principal_id}")
            continue
        if sealed != login.totp_secret:
            login.totp_secret = sealed
            summary.secrets_rewrapped += 1


async def rewrap(
    sessions: async_sessionmaker[AsyncSession],
    cipher: FieldCipher,
    *,
    progress: Callable[[int], None] = lambda n: None,
) -> RewrapSummary:
    summary = RewrapSummary()
    after: int | None = 0
    while after is not None:
        async with sessions() as session, session.begin():
            seen = summary.cards
            after = await _card_batch(session, cipher, after, summary)
            progress(summary.cards - seen)
    async with sessions() as session, session.begin():
        await _totp_secrets(session, cipher, summary)
        await append_event(
            session,
            tenant="cn",
            actor=ACTOR,
            action="keys.rewrap",
            target_type="keys",
            target_id="data,lookup",
            detail={
                "cards": summary.cards,
                "cards_rewrapped": summary.cards_rewrapped,
                "totp_secrets": summary.secrets,
                "totp_secrets_rewrapped": summary.secrets_rewrapped,
                "unreadable": summary.unreadable_count,
            },
        )
    return summary
