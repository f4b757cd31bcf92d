"""The partner mutations, each a `CardChange` for `card_services.perform`: which card service the
decision checks, how the card is found, and what the change does to the locked card."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from sqlmodel.ext.asyncio.session import AsyncSession

from app.domain import card as machine
from app.domain.card import LOCKED_PIN_STATES, CardState, CardStatus, HardLockRule, PinLocks, PinState
from app.domain.catalogue import FINANCIAL_SERVICES, ActivationChannel, CardService, parse_activation_channel
from app.domain.errors import DomainError, ErrorCode
from app.domain.pin import PIN_LENGTH, validate_new_pin
from app.ops.cards.lookup import CardRecord, Presented
from app.ops.cards.pins import default_pin, hash_pin, pin_matches
from app.ops.cards.services import Apply, CardChange, WrongPin
from app.ops.errors import OpsError
from app.store.queries import effective_settings
from app.store.tables.common import utcnow

# What each financial card service leaves in `financial_function` (None: unchanged).
FINANCIAL_FUNCTION = {
    CardService.financial_activation: "active",
    CardService.financial_password_change: None,
    CardService.financial_password_reset: None,
    CardService.financial_loss_report: "loss_reported",
    CardService.bank_account_cancellation: "cancelled",
}


def _store(record: CardRecord, state: CardState) -> None:
    card = record.card
    card.status = state.status.value
    card.social_function = state.social_function.value
    card.pin_state = state.pin_state.value
    card.pin_failures = state.pin_failures


def _transition(step: Callable[[CardState], CardState]) -> Apply:
    async def apply(session: AsyncSession, record: CardRecord, prepared: object) -> dict:
        _store(record, step(record.state))
        return {}

    return apply


def activate_card(card_number: str, id_number: str, channel: str, key: str) -> CardChange:
    presented = Presented.parse(id_number, card_number=card_number)
    chosen = parse_activation_channel(channel)
    if chosen == ActivationChannel.bank_financial_sync:
        raise OpsError(
            "BAD_INPUT", "bank_financial_sync is reported with reportFinancialActivation", field="channel"
        )

    async def apply(session: AsyncSession, record: CardRecord, prepared: object) -> dict:
        _store(record, machine.activate(record.state))
        record.card.activation_channel = chosen.value
        return {}

    return CardChange(
        "card.activate",
        CardService.activation,
        presented,
        key,
        {"card_number": presented.card_number, "id_number": presented.id_number, "channel": chosen.value},
        apply,
        channel=chosen.value,
    )


def report_financial_activation(
    card_serial: str, id_number: str, bank_card_number: str, key: str
) -> CardChange:
    presented = Presented.parse(id_number, card_serial=card_serial, bank_card_number=bank_card_number)

    async def apply(session: AsyncSession, record: CardRecord, prepared: object) -> dict:
        # The bank may send the sync twice; an already enabled social function is success.
        try:
            _store(record, machine.activate(record.state))
            record.card.activation_channel = ActivationChannel.bank_financial_sync.value
            newly = True
        except DomainError as err:
            if err.code != ErrorCode.ALREADY_ACTIVE:
                raise
            newly = False
        record.card.financial_function = FINANCIAL_FUNCTION[CardService.financial_activation]
        return {"social_function_enabled_now": newly}

    return CardChange(
        "card.financial_activation",
        CardService.financial_activation,
        presented,
        key,
        {"card_serial": presented.card_serial, "id_number": presented.id_number, "bank": bank_card_number},
        apply,
        channel=ActivationChannel.bank_financial_sync.value,
    )


def record_bank_service(
    service: str, card_serial: str, id_number: str, bank_card_number: str | None, key: str
) -> CardChange:
    chosen = CardService(service) if service in set(FINANCIAL_SERVICES) else None
    if chosen is None:
        names = ", ".join(sorted(s.value for s in FINANCIAL_SERVICES))
        raise OpsError("BAD_INPUT", f"a bank service is one of {names}", field="service")
    presented = Presented.parse(id_number, card_serial=card_serial, bank_card_number=bank_card_number)

    async def apply(session: AsyncSession, record: CardRecord, prepared: object) -> dict:
        if record.card.financial_function == "cancelled":
            raise DomainError(ErrorCode.ILLEGAL_TRANSITION, "the card's bank account is cancelled")
        after = FINANCIAL_FUNCTION[chosen]
        if after is not None:
            record.card.financial_function = after
        return {}

    return CardChange(
        f"card.bank.{chosen.value}",
        chosen,
        presented,
        key,
        {"card_serial": presented.card_serial, "id_number": presented.id_number, "bank": bank_card_number},
        apply,
    )


def _simple(operation: str, service: CardService, step, card_number: str, id_number: str, key: str, **kw):
    presented = Presented.parse(id_number, card_number=card_number)
    fields = {"card_number": presented.card_number, "id_number": presented.id_number}
    return CardChange(operation, service, presented, key, fields, _transition(step), **kw)


def report_temporary_loss(card_number: str, id_number: str, key: str) -> CardChange:
    return _simple(
        "card.temp_loss", CardService.temp_loss_report, machine.report_temp_loss, card_number, id_number, key
    )


def release_loss(card_number: str, id_number: str, key: str) -> CardChange:
    return _simple(
        "card.release_loss", CardService.loss_release, machine.release_loss, card_number, id_number, key
    )


def _formal_loss_decision_state(state: CardState) -> CardState:
    # No separate card service exists for a formal loss: it is the second step of loss reporting,
    # so the loss-report grant covers it from temp_loss too; the state machine has the last word.
    return replace(state, status=CardStatus.normal) if state.status is CardStatus.temp_loss else state


def report_formal_loss(card_number: str, id_number: str, key: str) -> CardChange:
    return _simple(
        "card.formal_loss",
        CardService.temp_loss_report,
        machine.report_formal_loss,
        card_number,
        id_number,
        key,
        decision_state=_formal_loss_decision_state,
    )


def _clear_hard_lock(record: CardRecord, was: PinState) -> dict:
    """After a hard lock is lifted at an identity desk, the counting of locks starts afresh."""
    if was is not PinState.hard_locked:
        return {}
    record.card.pin_locks, record.card.pin_locks_since = 0, None
    return {"hard_lock_lifted": True}


def unlock_password(
    card_number: str, id_number: str, identity_verified: bool, at_identity_desk: bool, key: str
) -> CardChange:
    """Unlock a locked PIN; a hard-locked one only at an identity desk (an HRSS hall or the 12333
    desk, `at_identity_desk`) that checked the holder's identity."""
    presented = Presented.parse(id_number, card_number=card_number)

    async def apply(session: AsyncSession, record: CardRecord, prepared: object) -> dict:
        was = record.state.pin_state
        # Unlocking keeps the PIN: the card's own hash if the holder set one, else the default.
        state = machine.pin_unlock(
            record.state,
            pin_was_set=record.card.pin_hash is not None,
            identity_verified=identity_verified,
            at_counter=at_identity_desk,
        )
        _store(record, state)
        return {"identity_verified": identity_verified, **_clear_hard_lock(record, was)}

    fields = {
        "card_number": presented.card_number,
        "id_number": presented.id_number,
        "identity_verified": identity_verified,
    }
    return CardChange("card.pin_unlock", CardService.password_unlock, presented, key, fields, apply)


@dataclass(frozen=True)
class _NewPin:
    old_ok: bool
    new_hash: str


def change_password(
    card_number: str, id_number: str, old_pin: str, new_pin: str, key: str, hard_lock: HardLockRule
) -> CardChange:
    presented = Presented.parse(id_number, card_number=card_number)
    validate_new_pin(new_pin, default_pin())
    if not (len(old_pin) == PIN_LENGTH and old_pin.isascii() and old_pin.isdigit()):
        raise OpsError("BAD_INPUT", "a PIN is exactly 6 digits", field="oldPin")

    async def prepare(record: CardRecord) -> _NewPin:
        old_ok = await pin_matches(record.card.pin_state, record.card.pin_hash, old_pin)
        return _NewPin(old_ok, await hash_pin(new_pin) if old_ok else "")

    async def apply(session: AsyncSession, record: CardRecord, prepared: _NewPin) -> dict:
        if not prepared.old_ok:
            settings = await effective_settings(session, record.tenant_path)
            state = machine.pin_failed(record.state, settings.pin_lock_threshold)
            if state.pin_state is PinState.locked:
                card = record.card
                locks = PinLocks(card.pin_locks, card.pin_locks_since)
                state, locks = machine.lock_counted(state, locks, utcnow(), hard_lock)
                card.pin_locks, card.pin_locks_since = locks.count, locks.since
            _store(record, state)
            if state.pin_state in LOCKED_PIN_STATES:
                raise WrongPin(0, hard=state.pin_state is PinState.hard_locked)
            raise WrongPin(settings.pin_lock_threshold - state.pin_failures)
        _store(record, machine.pin_changed(record.state))
        record.card.pin_hash = prepared.new_hash
        return {"pin_check": "ok"}

    fields = {
        "card_number": presented.card_number,
        "id_number": presented.id_number,
        "old": old_pin,
        "new": new_pin,
    }
    return CardChange("card.pin_change", CardService.password_change, presented, key, fields, apply, prepare)


def reset_password(
    card_number: str, id_number: str, identity_verified: bool, new_pin: str, key: str, at_identity_desk: bool
) -> CardChange:
    if identity_verified is not True:
        raise OpsError(
            "BAD_INPUT",
            "a PIN is reset only after the holder's identity was checked against the original ID",
            field="identityVerified",
        )
    presented = Presented.parse(id_number, card_number=card_number)
    validate_new_pin(new_pin, default_pin())

    async def prepare(record: CardRecord) -> str:
        return await hash_pin(new_pin)

    async def apply(session: AsyncSession, record: CardRecord, prepared: str) -> dict:
        was = record.state.pin_state
        _store(record, machine.pin_reset(record.state, at_counter=at_identity_desk))
        record.card.pin_hash = prepared
        return {"identity_verified": True, **_clear_hard_lock(record, was)}

    fields = {"card_number": presented.card_number, "id_number": presented.id_number, "new": new_pin}
    return CardChange("card.pin_reset", CardService.password_reset, presented, key, fields, apply, prepare)
