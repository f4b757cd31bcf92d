"""Audit events of partner card calls (DESIGN.md §6): every read and change, allowed or refused.

Events carry masked ID numbers and the card's internal id, never a full ID or bank card number, a PIN
or a key. A refusal's event is written in a transaction of its own (the refused change rolled back).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from app.authz.decision import Decision
from app.ops.card_lookup import CardRecord
from app.ops.partner_keys import PartnerCaller
from app.store.audit import append_event
from app.store.db import take_write_lock

NO_CARD_CHAIN = "cn"
"""Where a probe that matched no card is recorded: there is no card tenant to file it under."""


@dataclass(frozen=True)
class CallInfo:
    """Who asked, and for which request (for every event of one call)."""

    caller: PartnerCaller
    request_id: str | None

    def detail(self, **more: object) -> dict:
        return {"key_id": self.caller.key_id, "outlet_kind": self.caller.outlet_kind, **more}


def state_of(record: CardRecord) -> dict:
    c = record.card
    return {
        "status": c.status,
        "social_function": c.social_function,
        "pin_state": c.pin_state,
        "pin_failures": c.pin_failures,
        "financial_function": c.financial_function,
    }


async def append_card_event(
    session: AsyncSession,
    call: CallInfo,
    action: str,
    record: CardRecord,
    decision: str,
    *,
    reason: str | None = None,
    **detail: object,
) -> None:
    await append_event(
        session,
        tenant=record.tenant_path,
        actor=call.caller.label,
        action=action,
        target_type="card",
        target_id=str(record.card.id),
        decision=decision,
        reason=reason,
        request_id=call.request_id,
        detail=call.detail(id_number_masked=record.card.id_number_masked, **detail),
    )


async def record_refusal(
    sessions: async_sessionmaker[AsyncSession],
    call: CallInfo,
    action: str,
    record: CardRecord,
    decision: Decision,
    *,
    answer: str,
    **detail: object,
) -> None:
    """A refused decision on a card the caller presented correctly; `answer` is what the caller saw."""
    async with sessions() as session, session.begin():
        await take_write_lock(session)
        await append_card_event(
            session,
            call,
            action,
            record,
            "deny",
            reason=decision.reason.value if decision.reason else None,
            answer=answer,
            grant_ids=list(decision.grant_ids),
            explanation=decision.explanation,
            state=state_of(record),
            **detail,
        )


async def record_no_card(
    sessions: async_sessionmaker[AsyncSession], call: CallInfo, action: str, id_number_masked: str
) -> None:
    """The presented ID number and card identifier matched no card."""
    async with sessions() as session, session.begin():
        await take_write_lock(session)
        await append_event(
            session,
            tenant=NO_CARD_CHAIN,
            actor=call.caller.label,
            action=action,
            target_type="card",
            target_id="",
            decision="deny",
            reason="NOT_FOUND",
            request_id=call.request_id,
            detail=call.detail(id_number_masked=id_number_masked, answer="NOT_FOUND", matched=False),
        )


async def record_read(
    sessions: async_sessionmaker[AsyncSession],
    call: CallInfo,
    record: CardRecord,
    decision: Decision,
    purpose: str,
) -> None:
    """An allowed read of a card's personal data."""
    async with sessions() as session, session.begin():
        await take_write_lock(session)
        await append_card_event(
            session,
            call,
            "card.status",
            record,
            "allow",
            purpose=purpose,
            grant_ids=list(decision.grant_ids),
            explanation=decision.explanation,
        )
