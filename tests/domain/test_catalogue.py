import pytest

from app.domain.catalogue import (
    CHANNEL_OUTLET_KINDS,
    DEFAULT_CEILING,
    FINANCIAL_SERVICES,
    STATUTORY_DOMAIN,
    STATUTORY_LINES,
    ActivationChannel,
    CardService,
    OutletKind,
    channel_fits,
    parse_activation_channel,
    parse_card_service,
    parse_outlet_kind,
)
from app.domain.errors import DomainError, ErrorCode
from app.domain.reasons import Reason

S = CardService
K = OutletKind
C = ActivationChannel


def test_card_services_are_exactly_the_glossary():
    assert [s.value for s in CardService] == [
        "activation",
        "info_inquiry",
        "password_change",
        "password_reset",
        "password_unlock",
        "temp_loss_report",
        "loss_release",
        "financial_activation",
        "financial_password_change",
        "financial_password_reset",
        "financial_loss_report",
        "bank_account_cancellation",
    ]


def test_financial_services():
    assert {
        S.financial_activation,
        S.financial_password_change,
        S.financial_password_reset,
        S.financial_loss_report,
        S.bank_account_cancellation,
    } == FINANCIAL_SERVICES
    assert isinstance(FINANCIAL_SERVICES, frozenset)


def test_outlet_kinds_and_channels_are_the_glossary():
    assert {k.value for k in OutletKind} == {
        "hrss_hall",
        "grassroots_platform",
        "bank_outlet",
        "designated_hospital",
        "designated_pharmacy",
        "self_service_terminal",
        "hotline",
    }
    assert {c.value for c in ActivationChannel} == {
        "bank_counter",
        "hospital_first_use",
        "pharmacy_first_use",
        "bank_financial_sync",
        "hotline_12333",
        "hrss_window",
        "grassroots_platform",
    }


def test_every_channel_has_outlet_kinds():
    assert set(CHANNEL_OUTLET_KINDS) == set(ActivationChannel)
    assert all(CHANNEL_OUTLET_KINDS.values())


@pytest.mark.parametrize(
    ("channel", "kinds"),
    [
        (C.bank_counter, {K.bank_outlet}),
        (C.bank_financial_sync, {K.bank_outlet}),
        (C.hospital_first_use, {K.designated_hospital}),
        (C.pharmacy_first_use, {K.designated_pharmacy}),
        (C.hotline_12333, {K.hotline}),
        (C.hrss_window, {K.hrss_hall, K.self_service_terminal}),
        (C.grassroots_platform, {K.grassroots_platform}),
    ],
)
def test_channel_fits(channel, kinds):
    for kind in OutletKind:
        assert channel_fits(channel, kind) is (kind in kinds)


def test_default_ceiling():
    assert set(DEFAULT_CEILING) == set(OutletKind)
    assert DEFAULT_CEILING[K.hrss_hall] == frozenset(CardService)
    assert DEFAULT_CEILING[K.grassroots_platform] == {
        S.activation,
        S.info_inquiry,
        S.password_change,
        S.password_reset,
    }
    assert DEFAULT_CEILING[K.designated_pharmacy] == {S.activation, S.password_change}
    assert DEFAULT_CEILING[K.designated_hospital] == {S.activation, S.info_inquiry}
    assert (
        DEFAULT_CEILING[K.bank_outlet]
        == {
            S.activation,
            S.info_inquiry,
            S.password_change,
            S.password_reset,
            S.password_unlock,
            S.temp_loss_report,
            S.loss_release,
        }
        | FINANCIAL_SERVICES
    )
    assert DEFAULT_CEILING[K.self_service_terminal] == {S.info_inquiry, S.password_change, S.temp_loss_report}
    # 12333 unlocks a PIN (keeping it) after its own identity check, and sets none.
    assert DEFAULT_CEILING[K.hotline] == {
        S.activation,
        S.info_inquiry,
        S.temp_loss_report,
        S.loss_release,
        S.password_unlock,
    }


def test_financial_services_only_at_bank_outlets_and_halls():
    for kind, services in DEFAULT_CEILING.items():
        if kind not in (K.bank_outlet, K.hrss_hall):
            assert not services & FINANCIAL_SERVICES, kind


def test_catalogue_is_read_only():
    with pytest.raises(TypeError):
        DEFAULT_CEILING[K.hotline] = frozenset()  # type: ignore[index]
    with pytest.raises(TypeError):
        CHANNEL_OUTLET_KINDS[C.bank_counter] = frozenset()  # type: ignore[index]


def test_statutory_lines():
    assert STATUTORY_DOMAIN == "cn"
    assert set(STATUTORY_LINES) == {
        (K.designated_hospital, S.activation),
        (K.designated_pharmacy, S.activation),
    }
    for kind, service in STATUTORY_LINES:
        assert service in DEFAULT_CEILING[kind]


def test_parse_good_values():
    assert parse_card_service("password_reset") is S.password_reset
    assert parse_outlet_kind("bank_outlet") is K.bank_outlet
    assert parse_activation_channel("hotline_12333") is C.hotline_12333
    assert parse_card_service(S.activation) is S.activation


@pytest.mark.parametrize(
    ("parse", "code", "enum"),
    [
        (parse_card_service, ErrorCode.UNKNOWN_CARD_SERVICE, CardService),
        (parse_outlet_kind, ErrorCode.UNKNOWN_OUTLET_KIND, OutletKind),
        (parse_activation_channel, ErrorCode.UNKNOWN_CHANNEL, ActivationChannel),
    ],
)
@pytest.mark.parametrize("bad", ["", "Activation", " activation", "service", "x" * 500, None])
def test_parse_unknown_lists_allowed_values(parse, code, enum, bad):
    with pytest.raises(DomainError) as exc:
        parse(bad)
    assert exc.value.code == code
    for member in enum:
        assert member.value in exc.value.message
    assert len(exc.value.message) < 600  # a huge input is not echoed in full


def test_reasons():
    assert [r.value for r in Reason] == [
        "NO_GRANT",
        "NOT_YET_VALID",
        "EXPIRED",
        "SUSPENDED",
        "BLOCKED",
        "ABOVE_CEILING",
        "OUTSIDE_TENANT",
        "WRONG_BANK",
        "CHANNEL_MISMATCH",
        "CARD_STATE",
    ]
    assert all(r.name == r.value for r in Reason)
