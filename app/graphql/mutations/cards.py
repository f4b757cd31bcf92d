"""Partner mutations: card services performed by an outlet's system. Rules live in app/ops.

Every input carries an idempotencyKey: retrying with the same key and input returns the first answer
(replayed: true) without acting twice; the same key with other input is CONFLICT.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import strawberry

from app.domain.card import HardLockRule
from app.domain.catalogue import IDENTITY_DESKS
from app.graphql.types.card import CardServicePayload
from app.ops.auth import PartnerCaller
from app.ops.cards import changes as card_changes
from app.ops.cards import services as card_services
from app.ops.cards.audit import CallInfo
from app.ops.cards.services import CardChange

_KEY = "Your unique id for this request (8-64 of A-Z, a-z, 0-9, '.', '_', ':', '-'); reuse it only to retry."
_CARD_NUMBER = "The card number (卡号) printed on the card."
_ID_NUMBER = "The holder's 18-character resident ID number."
_SERIAL = "The card identification code (卡识别码)."
_NEW_PIN = "The new 6-digit PIN; all-equal digits, straight runs and the default 123456 are refused."


@strawberry.input(description="A card to activate and the channel it is activated through.")
class ActivateCardInput:
    card_number: str = strawberry.field(description=_CARD_NUMBER)
    id_number: str = strawberry.field(description=_ID_NUMBER)
    channel: str = strawberry.field(
        description="hospital_first_use, pharmacy_first_use, bank_counter, hotline_12333, hrss_window or "
        "grassroots_platform; it must fit your outlet's kind (else FORBIDDEN, reason CHANNEL_MISMATCH)."
    )
    idempotency_key: str = strawberry.field(description=_KEY)


@strawberry.input(
    description="A service bank's report that it activated a card's financial function (sent by an outlet of "
    "the card's own bank); it switches the social function on through bank_financial_sync."
)
class ReportFinancialActivationInput:
    card_serial: str = strawberry.field(description=_SERIAL)
    id_number: str = strawberry.field(description=_ID_NUMBER)
    bank_card_number: str = strawberry.field(description="The card's bank card number (Luhn-checked).")
    idempotency_key: str = strawberry.field(description=_KEY)


@strawberry.input(description="A PIN change by a holder who knows the current PIN.")
class ChangePasswordInput:
    card_number: str = strawberry.field(description=_CARD_NUMBER)
    id_number: str = strawberry.field(description=_ID_NUMBER)
    old_pin: str = strawberry.field(
        description="The current 6-digit PIN (123456 until the holder first sets one). A wrong PIN counts "
        "towards the department's lock threshold (BAD_INPUT, reason WRONG_PIN, extensions.attemptsLeft)."
    )
    new_pin: str = strawberry.field(description=_NEW_PIN)
    idempotency_key: str = strawberry.field(description=_KEY)


@strawberry.input(description="A new PIN set without the old one, after checking the holder's original ID.")
class ResetPasswordInput:
    card_number: str = strawberry.field(description=_CARD_NUMBER)
    id_number: str = strawberry.field(description=_ID_NUMBER)
    identity_verified: bool = strawberry.field(
        description="Must be true: your staff checked the holder against the original ID card."
    )
    new_pin: str = strawberry.field(description=_NEW_PIN)
    idempotency_key: str = strawberry.field(description=_KEY)


@strawberry.input(description="A locked PIN to unlock.")
class UnlockPasswordInput:
    card_number: str = strawberry.field(description=_CARD_NUMBER)
    id_number: str = strawberry.field(description=_ID_NUMBER)
    identity_verified: bool = strawberry.field(
        default=False,
        description="True when your staff checked the holder against the original ID card; needed (at an "
        "HRSS hall or the 12333 desk) to unlock a hard-locked PIN.",
    )
    idempotency_key: str = strawberry.field(description=_KEY)


@strawberry.input(description="The card a card service is performed on.")
class CardServiceInput:
    card_number: str = strawberry.field(description=_CARD_NUMBER)
    id_number: str = strawberry.field(description=_ID_NUMBER)
    idempotency_key: str = strawberry.field(description=_KEY)


@strawberry.input(
    description="A bank-side card service performed at an outlet of the card's own service bank."
)
class RecordBankServiceInput:
    service: str = strawberry.field(
        description="financial_activation, financial_password_change, financial_password_reset, "
        "financial_loss_report or bank_account_cancellation."
    )
    card_serial: str = strawberry.field(description=_SERIAL)
    id_number: str = strawberry.field(description=_ID_NUMBER)
    bank_card_number: str | None = strawberry.field(
        default=None, description="The card's bank card number; if given it must match the card."
    )
    idempotency_key: str = strawberry.field(description=_KEY)


async def _perform(info: strawberry.Info, build: Callable[[PartnerCaller], CardChange]) -> CardServicePayload:
    """Authenticate and count the call, build its change (which may depend on the calling outlet)
    and perform it."""
    caller = await info.context.partner_call()
    change = build(caller)
    result = await card_services.perform(
        info.context.cards, info.context.business, CallInfo(caller, info.context.request_id), change
    )
    return CardServicePayload.from_result(result)


def _hard_lock_rule(info: strawberry.Info) -> HardLockRule:
    settings = info.context.settings
    return HardLockRule(settings.pin_hard_lock_after, timedelta(hours=settings.pin_hard_lock_window_hours))


@strawberry.type
class CardMutations:
    @strawberry.mutation(description="For partner systems: switch a card's social-security function on.")
    async def activate_card(self, info: strawberry.Info, input: ActivateCardInput) -> CardServicePayload:
        return await _perform(
            info,
            lambda caller: card_changes.activate_card(
                input.card_number, input.id_number, input.channel, input.idempotency_key
            ),
        )

    @strawberry.mutation(
        description="For service banks: report a financial activation; the social function is switched on "
        "(already on counts as success)."
    )
    async def report_financial_activation(
        self, info: strawberry.Info, input: ReportFinancialActivationInput
    ) -> CardServicePayload:
        return await _perform(
            info,
            lambda caller: card_changes.report_financial_activation(
                input.card_serial, input.id_number, input.bank_card_number, input.idempotency_key
            ),
        )

    @strawberry.mutation(description="For partner systems: change the card's PIN, given the current one.")
    async def change_password(self, info: strawberry.Info, input: ChangePasswordInput) -> CardServicePayload:
        return await _perform(
            info,
            lambda caller: card_changes.change_password(
                input.card_number,
                input.id_number,
                input.old_pin,
                input.new_pin,
                input.idempotency_key,
                _hard_lock_rule(info),
            ),
        )

    @strawberry.mutation(
        description="For partner systems: set a new PIN after an identity check; unlocks it."
    )
    async def reset_password(self, info: strawberry.Info, input: ResetPasswordInput) -> CardServicePayload:
        return await _perform(
            info,
            lambda caller: card_changes.reset_password(
                input.card_number,
                input.id_number,
                input.identity_verified,
                input.new_pin,
                input.idempotency_key,
                at_identity_desk=caller.outlet_kind in IDENTITY_DESKS,
            ),
        )

    @strawberry.mutation(
        description="For partner systems: unlock a locked PIN, keeping the PIN itself. A hard-locked PIN "
        "(pinState hard_locked: it locked too often in a short time) is unlocked only by an HRSS hall or "
        "the 12333 desk, with identityVerified true."
    )
    async def unlock_password(self, info: strawberry.Info, input: UnlockPasswordInput) -> CardServicePayload:
        return await _perform(
            info,
            lambda caller: card_changes.unlock_password(
                input.card_number,
                input.id_number,
                input.identity_verified,
                caller.outlet_kind in IDENTITY_DESKS,
                input.idempotency_key,
            ),
        )

    @strawberry.mutation(description="For partner systems: report the card lost for now (releasable).")
    async def report_temporary_loss(
        self, info: strawberry.Info, input: CardServiceInput
    ) -> CardServicePayload:
        return await _perform(
            info,
            lambda caller: card_changes.report_temporary_loss(
                input.card_number, input.id_number, input.idempotency_key
            ),
        )

    @strawberry.mutation(description="For partner systems: release a temporary loss report.")
    async def release_loss(self, info: strawberry.Info, input: CardServiceInput) -> CardServicePayload:
        return await _perform(
            info,
            lambda caller: card_changes.release_loss(
                input.card_number, input.id_number, input.idempotency_key
            ),
        )

    @strawberry.mutation(
        description="For partner systems: report the card formally lost (final; the card is replaced). "
        "Needs the temp_loss_report card service."
    )
    async def report_formal_loss(self, info: strawberry.Info, input: CardServiceInput) -> CardServicePayload:
        return await _perform(
            info,
            lambda caller: card_changes.report_formal_loss(
                input.card_number, input.id_number, input.idempotency_key
            ),
        )

    @strawberry.mutation(
        description="For service banks: record a bank-side card service; only outlets of the card's own "
        "bank (else FORBIDDEN, reason WRONG_BANK)."
    )
    async def record_bank_service(
        self, info: strawberry.Info, input: RecordBankServiceInput
    ) -> CardServicePayload:
        return await _perform(
            info,
            lambda caller: card_changes.record_bank_service(
                input.service,
                input.card_serial,
                input.id_number,
                input.bank_card_number,
                input.idempotency_key,
            ),
        )
