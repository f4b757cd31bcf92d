"""Finding a card from what a partner presents, without ever scanning: the keyed hash of the ID
number is indexed, and the other presented identifier (card number, serial, bank card) must match.

Also the masked view of a card that partners may see, and the write lock a card change takes.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import bindparam
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.authz.decision import CardFacts
from app.domain.bankcard import normalize_bank_card_number
from app.domain.card import CardState
from app.domain.idnumber import normalize_id_number
from app.ops.cards.store import CardStore
from app.store.crypto import FieldCipher
from app.store.db import take_write_lock
from app.store.tables import Card, Tenant

ID_CONTEXT = b"id_number"
BANK_CONTEXT = b"bank_card"


@dataclass(frozen=True)
class Presented:
    """What the cardholder showed: a valid ID number plus one more identifier of the card."""

    id_number: str
    card_number: str | None = None
    card_serial: str | None = None
    bank_card_number: str | None = None

    @classmethod
    def parse(cls, id_number: str, **others: str | None) -> Presented:
        """Validates the ID number (BAD_INPUT on a wrong check character) and a bank card number."""
        bank = others.pop("bank_card_number", None)
        return cls(
            normalize_id_number(id_number),
            bank_card_number=normalize_bank_card_number(bank) if bank is not None else None,
            **{k: (v.strip().upper() if v else v) for k, v in others.items()},
        )


class CardRow(NamedTuple):
    """The columns of a card that deciding on it and answering about it need (no ciphertexts).

    Read on every partner call, so it is a plain row (a tuple: ~8x cheaper to build than a frozen
    dataclass), not an ORM object; the attribute names are `Card`'s, so code that only reads a card
    takes either.
    """

    id: int
    card_number: str
    card_serial: str
    bank_card_hash: bytes | None
    service_bank_code: str
    status: str
    social_function: str
    activation_channel: str | None
    pin_state: str
    pin_failures: int
    pin_hash: str | None
    financial_function: str | None
    id_number_masked: str
    bank_card_masked: str | None


_ROW_COLUMNS = [getattr(Card, name) for name in CardRow._fields]
_BY_ID_HASH = (
    select(*_ROW_COLUMNS, Tenant.path)
    .join(Tenant, Tenant.id == Card.issuing_tenant_id)
    .where(Card.id_number_hash == bindparam("id_hash"))
)


@dataclass(frozen=True)
class CardRecord:
    card: Card | CardRow  # a row to read, or the locked ORM object a change updates
    tenant_path: str

    @property
    def state(self) -> CardState:
        c = self.card
        return CardState(c.status, c.social_function, c.pin_state, c.pin_failures)

    @property
    def facts(self) -> CardFacts:
        return CardFacts(self.tenant_path, self.card.service_bank_code, self.state)


def _same(a: str | bytes | None, b: str | bytes | None) -> bool:
    if a is None or b is None:
        return False
    a_bytes = a.encode() if isinstance(a, str) else a
    b_bytes = b.encode() if isinstance(b, str) else b
    return hmac.compare_digest(a_bytes, b_bytes)


def _matches(card: CardRow, presented: Presented, cipher: FieldCipher) -> bool:
    checks = []
    if presented.card_number is not None:
        checks.append(_same(card.card_number, presented.card_number))
    if presented.card_serial is not None:
        checks.append(_same(card.card_serial, presented.card_serial))
    if presented.bank_card_number is not None:
        wanted = cipher.lookup_candidates(presented.bank_card_number, context=BANK_CONTEXT)
        checks.append(any(_same(card.bank_card_hash, h) for h in wanted))
    return bool(checks) and all(checks)


async def find_card(store: CardStore, presented: Presented) -> CardRecord | None:
    """The one card with this ID number whose other presented identifiers all match, else None.

    A person may hold several cards over time (a replaced card keeps its record), hence a list.
    While the lookup key rotates, a card not yet rewrapped carries the previous key's hash: it is
    looked for under that one when the current one finds nothing.
    """
    for id_hash in store.cipher.lookup_candidates(presented.id_number, context=ID_CONTEXT):
        for *values, path in await store.reader.all(_BY_ID_HASH, {"id_hash": id_hash}):
            card = CardRow(*values)
            if _matches(card, presented, store.cipher):
                return CardRecord(card, path)
    return None


async def lock_card(session: AsyncSession, card_id: int) -> CardRecord:
    """Re-read a card under a lock held until commit; call first thing in the transaction."""
    await take_write_lock(session)
    card, path = (
        await session.exec(
            select(Card, Tenant.path)
            .join(Tenant, Tenant.id == Card.issuing_tenant_id)
            .where(Card.id == card_id)
            .with_for_update(of=Card)
        )
    ).one()
    return CardRecord(card, path)


@dataclass(frozen=True)
class CardView:
    """What a partner may see of a card: states and masked numbers, never a full number or a PIN."""

    card_number: str
    card_serial: str
    issuing_tenant: str
    service_bank: str
    status: str
    social_function: str
    activation_channel: str | None
    pin_state: str
    financial_function: str | None
    id_number_masked: str
    bank_card_masked: str | None

    @classmethod
    def of(cls, record: CardRecord) -> CardView:
        c = record.card
        return cls(
            c.card_number,
            c.card_serial,
            record.tenant_path,
            c.service_bank_code,
            c.status,
            c.social_function,
            c.activation_channel,
            c.pin_state,
            c.financial_function,
            c.id_number_masked,
            c.bank_card_masked,
        )
