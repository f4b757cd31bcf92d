"""Audit events of partner card calls (DESIGN.md §6): every read and change, allowed or refused.

Events carry masked ID numbers and the card's internal id, never a full ID or bank card number, a PIN
or a key. A change's events are written in its transaction; reads and refusals (the refused change
rolled back) go through the worker's audit writer, committed before the call is answered.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from app import metrics
from app.authz.decision import Decision
from app.ops.auth import PartnerCaller
from app.ops.cards.lookup import CardRecord
from app.store.audit import append_event
from app.store.audit_writer import AuditWriter

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


def _card_event(
    call: CallInfo, action: str, record: CardRecord, decision: str, reason: str | None, **detail: object
) -> dict:
    # Every decided card call passes here once (allowed changes and reads, refusals): the metric.
    metrics.DECISIONS.labels(decision, reason or "").inc()
    return {
        "actor": call.caller.label,
        "credential": call.caller.credential,
        "action": action,
        "target_type": "card",
        "target_id": str(record.card.id),
        "decision": decision,
        "reason": reason,
        "request_id": call.request_id,
        "detail": call.detail(id_number_masked=record.card.id_number_masked, **detail),
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
    """An event of a card change, in the change's transaction."""
    await append_event(
        session, tenant=record.tenant_path, **_card_event(call, action, record, decision, reason, **detail)
    )


async def record_refusal(
    audit: AuditWriter,
    call: CallInfo,
    action: str,
    record: CardRecord,
    decision: Decision,
    *,
    answer: str,
    **detail: object,
) -> None:
    """A refused decision on a card the caller presented correctly; `answer` is what the caller saw."""
    await audit.append(
        record.tenant_path,
        **_card_event(
            call,
            action,
            record,
            "deny",
            decision.reason.value if decision.reason else None,
            answer=answer,
            grant_ids=list(decision.grant_ids),
            explanation=decision.explanation,
            state=state_of(record),
            **detail,
        ),
    )


async def record_no_card(audit: AuditWriter, call: CallInfo, action: str, id_number_masked: str) -> None:
    """The presented ID number and card identifier matched no card."""
    metrics.DECISIONS.labels("deny", "NOT_FOUND").inc()
    await audit.append(
        NO_CARD_CHAIN,
        actor=call.caller.label,
        credential=call.caller.credential,
        action=action,
        target_type="card",
        target_id="",
        decision="deny",
        reason="NOT_FOUND",
        request_id=call.request_id,
        detail=call.detail(id_number_masked=id_number_masked, answer="NOT_FOUND", matched=False),
    )


async def record_read(
    audit: AuditWriter, call: CallInfo, record: CardRecord, decision: Decision, purpose: str
) -> None:
    """An allowed read of a card's personal data."""
    await audit.append(
        record.tenant_path,
        **_card_event(
            call,
            "card.status",
            record,
            "allow",
            None,
            purpose=purpose,
            grant_ids=list(decision.grant_ids),
            explanation=decision.explanation,
        ),
    )
