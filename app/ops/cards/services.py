"""Card services for partner systems: card status, the caller's permissions, and card changes.

Every call is one outlet (its API key) acting on one card, which the caller names by the holder's ID
number plus a card identifier; the business-plane decision (`app.authz.decision.decide`) rules on it
with the grants of the card's tenant, and every call is audited (`app.ops.cards.audit`).

What a refusal reveals (DESIGN.md §7: a card's existence is personal data):
- the ID number and card identifier match no card → NOT_FOUND;
- they match, but the policy gives the outlet no card service at all on cards of the card's tenant
  (no grant, no statutory line) → NOT_FOUND as well, indistinguishable from the first case;
- they match and the outlet holds some card service there, so it legitimately deals with such cards
  → FORBIDDEN with `reason` (NO_GRANT, WRONG_BANK, CARD_STATE, ...).
The audit event records which case it was (`reason`, and `answer` in its detail).

A change runs in one transaction: lock the card (FOR UPDATE on PostgreSQL, BEGIN IMMEDIATE on
SQLite), decide on the card's current state, apply, append the audit event and the idempotency
record. PIN hashing and verification happen before the lock; if the card's PIN changed meanwhile,
the call starts over.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, replace

from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from app.authz.decision import CardFacts, Decision, OutletFacts, decide
from app.authz.policy_state import BusinessPolicy
from app.authz.projection import outlet_subject, policy_time_now
from app.domain.card import CardState, CardStatus, PinState, SocialFunction
from app.domain.catalogue import CardService, parse_card_service
from app.domain.errors import DomainError
from app.domain.idnumber import mask_id_number
from app.domain.reasons import Reason
from app.domain.regions import ancestor_paths
from app.ops.auth import PartnerCaller
from app.ops.cards import idempotency
from app.ops.cards.audit import (
    CallInfo,
    append_card_event,
    record_no_card,
    record_read,
    record_refusal,
    state_of,
)
from app.ops.cards.lookup import CardRecord, CardView, Presented, find_card, lock_card
from app.ops.cards.store import CardStore
from app.ops.errors import OpsError
from app.ops.inputs import parse_input
from app.store.audit_writer import AuditWriter
from app.store.tables import Card
from app.store.tables.common import utcnow

MAX_PIN_RACE_RETRIES = 3


def outlet_facts(caller: PartnerCaller) -> OutletFacts:
    return OutletFacts(caller.outlet_id, caller.outlet_kind, caller.tenant_path, caller.bank_code)


def _not_found() -> OpsError:
    return OpsError("NOT_FOUND", "no card with this ID number and card identifier")


def _visible(policy: BusinessPolicy, caller: PartnerCaller, card_tenant: str, at: str) -> bool:
    """Whether the outlet holds any card service on cards of `card_tenant` (see the module docstring)."""
    subject = outlet_subject(caller.outlet_id)
    return bool(policy.enforcer.services_for(subject, caller.tenant_path, card_tenant, at))


async def _refuse(
    audit: AuditWriter,
    policy: BusinessPolicy,
    call: CallInfo,
    action: str,
    record: CardRecord,
    decision: Decision,
    at: str,
    **detail: object,
) -> OpsError:
    """Audit a refused decision and return the error the caller sees."""
    if not _visible(policy, call.caller, record.tenant_path, at):
        await record_refusal(audit, call, action, record, decision, answer="NOT_FOUND", **detail)
        return _not_found()
    await record_refusal(audit, call, action, record, decision, answer="FORBIDDEN", **detail)
    reason = decision.reason.value if decision.reason else None
    return OpsError("FORBIDDEN", decision.explanation.get("why", "refused"), reason=reason)


# --- reads ---------------------------------------------------------------------------------------


async def card_status(
    store: CardStore,
    policy: BusinessPolicy,
    call: CallInfo,
    presented: Presented,
    purpose: str,
) -> CardView:
    """The card's states and masked numbers, if the outlet may perform `purpose` on it now."""
    service = parse_input("purpose", parse_card_service, purpose)
    record = await find_card(store, presented)
    if record is None:
        await record_no_card(store.audit, call, "card.status", mask_id_number(presented.id_number))
        raise _not_found()
    at = policy_time_now()
    decision = decide(policy, outlet_facts(call.caller), record.facts, service, at)
    if not decision.allowed:
        raise await _refuse(
            store.audit, policy, call, "card.status", record, decision, at, purpose=service.value
        )
    await record_read(store.audit, call, record, decision, service.value)
    return CardView.of(record)


@dataclass(frozen=True)
class Permission:
    """One card service the outlet may perform now: on cards of these departments (its own and those
    above it that allow it, top-most first), and every grant or statutory rule behind it, once."""

    service: str
    tenants: tuple[str, ...]
    grant_ids: tuple[str, ...]


def _state_allowing(service: CardService) -> CardState:
    """A card state in which `service` is possible, so only the policy decides (for myPermissions)."""
    if service == CardService.loss_release:
        return CardState(CardStatus.temp_loss, SocialFunction.enabled, PinState.set)
    if service == CardService.password_unlock:
        return CardState(CardStatus.normal, SocialFunction.enabled, PinState.locked)
    return CardState(CardStatus.normal, SocialFunction.not_enabled, PinState.set)


def my_permissions(policy: BusinessPolicy, caller: PartnerCaller) -> list[Permission]:
    """Card services the outlet may perform now on cards of its own tenant and of each ancestor
    (financial ones on cards of its own bank): one entry per card service, with the grants behind it."""
    outlet = outlet_facts(caller)
    at = policy_time_now()
    found = []
    for service in CardService:
        tenants: list[str] = []
        sources: dict[str, None] = {}  # in the order first met, each once
        for tenant in ancestor_paths(caller.tenant_path):
            card = CardFacts(tenant, caller.bank_code or "", _state_allowing(service))
            decision = decide(policy, outlet, card, service, at)
            if decision.allowed:
                tenants.append(tenant)
                sources.update(dict.fromkeys(decision.grant_ids))
        if tenants:
            found.append(Permission(service.value, tuple(tenants), tuple(sources)))
    return found


# --- changes -------------------------------------------------------------------------------------


class WrongPin(Exception):
    """The presented PIN was wrong: the failure is counted (committed), then the call fails.
    `hard` when this failure's lock hard-locked the PIN."""

    def __init__(self, attempts_left: int, *, hard: bool = False) -> None:
        super().__init__("wrong PIN")
        self.attempts_left = attempts_left
        self.hard = hard


Prepare = Callable[[CardRecord], Awaitable[object]]
Apply = Callable[[AsyncSession, CardRecord, object], Awaitable[dict]]


async def _nothing(record: CardRecord) -> None:
    return None


@dataclass(frozen=True)
class CardChange:
    """One partner mutation on one card.

    `prepare` runs before the lock (PIN hashing); what it saw of the PIN must still hold under the
    lock. `apply` changes the locked card and returns extra audit detail; a DomainError from it is a
    CARD_STATE refusal, `WrongPin` a counted failure.
    """

    operation: str  # audit action, also the idempotency operation
    service: CardService
    presented: Presented
    idempotency_key: str
    fields: dict  # the canonical input (without the key) for the request hash
    apply: Apply
    prepare: Prepare = _nothing
    channel: str | None = None
    # The state the decision sees; formal loss reuses the loss-report grant from temp_loss too.
    decision_state: Callable[[CardState], CardState] = lambda state: state
    detail: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ChangeResult:
    card: CardView
    replayed: bool


def _replay(stored: dict) -> ChangeResult:
    if "error" in stored:
        error = stored["error"]
        raise OpsError(error["code"], error["message"], **error["extensions"])
    return ChangeResult(CardView(**stored["card"]), replayed=True)


def _pin_seen(record: CardRecord) -> tuple[str, str | None]:
    return record.card.pin_state, record.card.pin_hash


async def perform(
    store: CardStore, policy: BusinessPolicy, call: CallInfo, change: CardChange
) -> ChangeResult:
    key = idempotency.check_key(change.idempotency_key)
    digests = idempotency.request_hashes(store.cipher, change.operation, change.fields)
    outlet_id = call.caller.outlet_id
    for _ in range(MAX_PIN_RACE_RETRIES):
        async with store.sessions() as session:
            stored = await idempotency.stored_result(session, outlet_id, key, change.operation, digests)
        if stored:
            return _replay(stored)
        record = await find_card(store, change.presented)
        if record is None:
            masked = mask_id_number(change.presented.id_number)
            await record_no_card(store.audit, call, change.operation, masked)
            raise _not_found()
        prepared = await change.prepare(record)
        try:
            outcome = await _locked_change(store, policy, call, change, record, prepared, key, digests)
        except IntegrityError:
            # Another request with this key committed first (on another card): not the same input.
            raise OpsError(
                "CONFLICT", "this idempotency key is in use; use a new key", field="idempotencyKey"
            ) from None
        if outcome is not None:
            return outcome
    raise OpsError("CONFLICT", "the card's PIN changed during the call; try again")


class _Refused(Exception):
    """Leaves the change's transaction (rolling it back) with the refusal to audit outside it."""

    def __init__(self, record: CardRecord, decision: Decision, at: str) -> None:
        # A detached copy: the rollback expires the session's rows, and the denial event needs it.
        self.record = CardRecord(Card(**record.card.model_dump()), record.tenant_path)
        self.decision, self.at = decision, at


async def _locked_change(
    store: CardStore,
    policy: BusinessPolicy,
    call: CallInfo,
    change: CardChange,
    seen: CardRecord,
    prepared: object,
    key: str,
    digests: tuple[str, ...],
) -> ChangeResult | None:
    """The change under the card's lock; None when the PIN changed since `prepare` (start over)."""
    try:
        async with store.sessions() as session, session.begin():
            record = await lock_card(session, seen.card.id)
            outlet_id = call.caller.outlet_id
            stored = await idempotency.stored_result(session, outlet_id, key, change.operation, digests)
            if stored:
                return _replay(stored)
            if _pin_seen(record) != _pin_seen(seen):
                return None
            at = policy_time_now()
            facts = replace(record.facts, state=change.decision_state(record.state))
            decision = decide(policy, outlet_facts(call.caller), facts, change.service, at, change.channel)
            if not decision.allowed:
                raise _Refused(record, decision, at)
            before = state_of(record)
            wrong_pin = None
            try:
                extra = await change.apply(session, record, prepared)
            except DomainError as err:
                refused = Decision(False, Reason.CARD_STATE, decision.grant_ids, {"why": err.message})
                raise _Refused(record, refused, at) from None
            except WrongPin as err:
                wrong_pin, extra = err, {"pin_check": "wrong"}
                if err.attempts_left == 0:  # this failure locked the PIN, or hard-locked it
                    extra["pin_locked"] = "hard" if err.hard else "locked"
            result = await _commit_change(session, call, change, record, decision, before, extra, wrong_pin)
            await idempotency.remember(session, outlet_id, key, change.operation, digests, result)
    except _Refused as refused:
        raise await _refuse(
            store.audit,
            policy,
            call,
            change.operation,
            refused.record,
            refused.decision,
            refused.at,
            service=change.service.value,
        ) from None
    # A counted wrong PIN is committed like any change, then answered as the error it is.
    return _replay(result) if wrong_pin is not None else ChangeResult(CardView.of(record), replayed=False)


def _wrong_pin_error(err: WrongPin) -> dict:
    if err.hard:
        message, reason = (
            "wrong PIN; the PIN locked too often and is now hard-locked: only an HRSS hall or the "
            "12333 desk unlocks it, after checking the holder's original ID",
            "PIN_HARD_LOCKED",
        )
    elif err.attempts_left == 0:
        message, reason = "wrong PIN; the PIN is now locked", "PIN_LOCKED"
    else:
        message, reason = "wrong PIN", "WRONG_PIN"
    return {
        "code": "BAD_INPUT",
        "message": message,
        "extensions": {"field": "oldPin", "reason": reason, "attemptsLeft": err.attempts_left},
    }


async def _commit_change(
    session: AsyncSession,
    call: CallInfo,
    change: CardChange,
    record: CardRecord,
    decision: Decision,
    before: dict,
    extra: dict,
    wrong_pin: WrongPin | None,
) -> dict:
    """Bump the card's version, append the allow event; return the answer to remember."""
    card = record.card
    card.version += 1
    card.updated_at = utcnow()
    session.add(card)
    await session.flush()
    await append_card_event(
        session,
        call,
        change.operation,
        record,
        "allow",
        service=change.service.value,
        channel=change.channel,
        grant_ids=list(decision.grant_ids),
        explanation=decision.explanation,
        before=before,
        after=state_of(record),
        **change.detail,
        **extra,
    )
    if wrong_pin is not None:
        return {"error": _wrong_pin_error(wrong_pin)}
    return {"card": asdict(CardView.of(record))}
