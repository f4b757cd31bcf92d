"""The catalogue: card services, outlet kinds, activation channels and the default extension rules.

Everything here is the national baseline from the seed text (design §1). Tenants narrow it with
ceilings and grants; they cannot widen what is statutory (financial services stay with the card's
own service bank, enforced in `app/authz`).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import TypeVar

from app.domain.errors import DomainError, ErrorCode, show


class CardService(StrEnum):
    """What an outlet does to a card (glossary: "card service", never bare "service")."""

    activation = "activation"
    info_inquiry = "info_inquiry"
    password_change = "password_change"
    password_reset = "password_reset"
    password_unlock = "password_unlock"
    temp_loss_report = "temp_loss_report"
    loss_release = "loss_release"
    financial_activation = "financial_activation"
    financial_password_change = "financial_password_change"
    financial_password_reset = "financial_password_reset"
    financial_loss_report = "financial_loss_report"
    bank_account_cancellation = "bank_account_cancellation"


FINANCIAL_SERVICES: frozenset[CardService] = frozenset(
    {
        CardService.financial_activation,
        CardService.financial_password_change,
        CardService.financial_password_reset,
        CardService.financial_loss_report,
        CardService.bank_account_cancellation,
    }
)
"""Bank-side card services: only outlets of the card's own service bank may perform them."""


class OutletKind(StrEnum):
    hrss_hall = "hrss_hall"
    grassroots_platform = "grassroots_platform"
    bank_outlet = "bank_outlet"
    designated_hospital = "designated_hospital"
    designated_pharmacy = "designated_pharmacy"
    self_service_terminal = "self_service_terminal"
    hotline = "hotline"


class ActivationChannel(StrEnum):
    """How an activation reached the card management center."""

    bank_counter = "bank_counter"
    hospital_first_use = "hospital_first_use"
    pharmacy_first_use = "pharmacy_first_use"
    bank_financial_sync = "bank_financial_sync"
    hotline_12333 = "hotline_12333"
    hrss_window = "hrss_window"
    grassroots_platform = "grassroots_platform"


_K = OutletKind
_S = CardService
_C = ActivationChannel

CHANNEL_OUTLET_KINDS: Mapping[ActivationChannel, frozenset[OutletKind]] = MappingProxyType(
    {
        _C.bank_counter: frozenset({_K.bank_outlet}),
        # The bank sends serial, ID and bank card number after financial activation at its outlet.
        _C.bank_financial_sync: frozenset({_K.bank_outlet}),
        _C.hospital_first_use: frozenset({_K.designated_hospital}),
        _C.pharmacy_first_use: frozenset({_K.designated_pharmacy}),
        _C.hotline_12333: frozenset({_K.hotline}),
        # Self-service terminals are run by HRSS halls and report through the hall's window
        # channel. Whether a terminal may activate at all is a ceiling/grant question (the default
        # ceiling says no), not a channel question, so a tenant that allows it needs no code change.
        _C.hrss_window: frozenset({_K.hrss_hall, _K.self_service_terminal}),
        _C.grassroots_platform: frozenset({_K.grassroots_platform}),
    }
)
"""Which outlet kinds may report an activation through each channel (else CHANNEL_MISMATCH)."""


def channel_fits(channel: ActivationChannel, kind: OutletKind) -> bool:
    return kind in CHANNEL_OUTLET_KINDS.get(channel, frozenset())


_ALL_SERVICES = frozenset(CardService)

DEFAULT_CEILING: Mapping[OutletKind, frozenset[CardService]] = MappingProxyType(
    {
        # The HRSS hall is the department itself: everything.
        _K.hrss_hall: _ALL_SERVICES,
        # Seed: "activation, information inquiry, password change and password reset".
        _K.grassroots_platform: frozenset(
            {_S.activation, _S.info_inquiry, _S.password_change, _S.password_reset}
        ),
        # Seed: activation with card and original ID, and the bank-side services. Whether the
        # outlet belongs to the card's own service bank is checked by the decision (WRONG_BANK).
        _K.bank_outlet: frozenset(
            {
                _S.activation,
                _S.info_inquiry,
                _S.password_change,
                _S.password_reset,
                _S.password_unlock,
                _S.temp_loss_report,
                _S.loss_release,
            }
        )
        | FINANCIAL_SERVICES,
        # Seed: first outpatient/inpatient registration activates; staff can show card status.
        _K.designated_hospital: frozenset({_S.activation, _S.info_inquiry}),
        # Seed: first use activates; password change "with the corresponding business authorization".
        _K.designated_pharmacy: frozenset({_S.activation, _S.password_change}),
        # Unattended machines: no activation, reset or unlock (those need a person to check the
        # original ID); a holder can look up the card, change a known PIN and stop a lost card now.
        _K.self_service_terminal: frozenset({_S.info_inquiry, _S.password_change, _S.temp_loss_report}),
        # 12333: manual activation and help by phone; a lost card can be stopped and released, and a
        # locked PIN unlocked (the PIN is kept) once the desk has checked the caller's identity;
        # nothing that sets a PIN is done over the phone.
        _K.hotline: frozenset(
            {_S.activation, _S.info_inquiry, _S.temp_loss_report, _S.loss_release, _S.password_unlock}
        ),
    }
)
"""The ceiling in force when no tenant has set one: card services each outlet kind may be granted."""

IDENTITY_DESKS = frozenset({OutletKind.hrss_hall, OutletKind.hotline})
"""Where a hard-locked PIN may be unlocked or reset (with the holder's identity checked): the HRSS
hall and the 12333 desk, staffed by the department itself."""

STATUTORY_DOMAIN = "cn"
"""Statutory lines apply nationally: their Casbin domain is the root."""

STATUTORY_LINES: tuple[tuple[OutletKind, CardService], ...] = (
    (_K.designated_hospital, _S.activation),
    (_K.designated_pharmacy, _S.activation),
)
"""Built-in national allowances (kind, card service) that need no grant: designated hospitals and
pharmacies activate a card on first use everywhere in `cn`. Tenants narrow them with ceilings or
blocks; `policies/business_builtin.csv` is their Casbin form."""


_E = TypeVar("_E", bound=StrEnum)


def _parse(enum: type[_E], value: str, code: ErrorCode, what: str, field: str) -> _E:
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(m.value for m in enum)
        raise DomainError(code, f"unknown {what} {show(value)}; allowed: {allowed}", field=field) from None


def parse_card_service(s: str) -> CardService:
    """`CardService(s)`, but a DomainError(UNKNOWN_CARD_SERVICE) listing the allowed values."""
    return _parse(CardService, s, ErrorCode.UNKNOWN_CARD_SERVICE, "card service", "card_service")


def parse_outlet_kind(s: str) -> OutletKind:
    """`OutletKind(s)`, but a DomainError(UNKNOWN_OUTLET_KIND) listing the allowed values."""
    return _parse(OutletKind, s, ErrorCode.UNKNOWN_OUTLET_KIND, "outlet kind", "outlet_kind")


def parse_activation_channel(s: str) -> ActivationChannel:
    """`ActivationChannel(s)`, but a DomainError(UNKNOWN_CHANNEL) listing the allowed values."""
    return _parse(ActivationChannel, s, ErrorCode.UNKNOWN_CHANNEL, "activation channel", "channel")
