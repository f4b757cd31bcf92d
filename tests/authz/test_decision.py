"""decide(): the reason enum, case by case, on the real indexed enforcer."""

import pytest

from app.authz.decision import CardFacts, OutletFacts, decide
from app.authz.policy_state import BusinessPolicy
from app.domain.card import CardState
from app.domain.reasons import Reason
from app.store.policy import Change

END = "9999-12-31T23:59:59Z"
NOW = "2026-06-01T00:00:00Z"
GZ, TH, SZ = "cn/440000/440100", "cn/440000/440100/440106", "cn/440000/440300"
NEW = CardState("normal", "not_enabled", "default")
ACTIVE = CardState("normal", "enabled", "set")


def policy(*lines: tuple[str, ...]) -> BusinessPolicy:
    state = BusinessPolicy()
    state.load(
        [
            ("g", "outlet:pharm", "kind:designated_pharmacy", TH),
            ("g", "outlet:hosp", "kind:designated_hospital", TH),
            ("g", "outlet:bank", "kind:bank_outlet", TH),
            ("g", "outlet:grass", "kind:grassroots_platform", TH),
            *lines,
        ]
    )
    return state


PHARM = OutletFacts("pharm", "designated_pharmacy", TH)
HOSP = OutletFacts("hosp", "designated_hospital", TH)
BANK = OutletFacts("bank", "bank_outlet", TH, "105")
GRASS = OutletFacts("grass", "grassroots_platform", TH)
GZ_CARD = CardFacts(TH, "105", ACTIVE)


def grant(sub, dom, svc, gid, nbf="2026-01-01T00:00:00Z", exp=END, eft="allow"):
    return ("p", sub, dom, svc, eft, nbf, exp, gid)


def test_grant_allows_and_names_the_grant():
    d = decide(
        policy(grant("outlet:grass", GZ, "password_change", "7")), GRASS, GZ_CARD, "password_change", NOW
    )
    assert d.allowed and d.reason is None and d.grant_ids == ("7",)


def test_kind_grant_applies_to_every_outlet_of_the_kind():
    d = decide(
        policy(grant("kind:grassroots_platform", TH, "info_inquiry", "8")),
        GRASS,
        GZ_CARD,
        "info_inquiry",
        NOW,
    )
    assert d.allowed and d.grant_ids == ("8",)


def test_statutory_first_use_needs_no_grant():
    d = decide(policy(), HOSP, CardFacts(TH, "105", NEW), "activation", NOW, channel="hospital_first_use")
    assert d.allowed and d.grant_ids == ("builtin:hospital_first_use",)


def test_ceiling_narrows_statutory_lines():
    state = policy(("c", "cn/440000", "designated_hospital", "info_inquiry"))
    d = decide(state, HOSP, CardFacts(TH, "105", NEW), "activation", NOW, channel="hospital_first_use")
    assert not d.allowed and d.reason == Reason.ABOVE_CEILING


@pytest.mark.parametrize(
    ("lines", "reason"),
    [
        ((), Reason.NO_GRANT),
        ((grant("outlet:grass", GZ, "password_change", "1", exp="2026-05-01T00:00:00Z"),), Reason.EXPIRED),
        (
            (grant("outlet:grass", GZ, "password_change", "1", nbf="2026-07-01T00:00:00Z"),),
            Reason.NOT_YET_VALID,
        ),
        (
            (
                grant("outlet:grass", TH, "password_change", "1"),
                grant("outlet:grass", TH, "password_change", "2", eft="deny"),
            ),
            Reason.BLOCKED,
        ),
        ((("s", "outlet:grass", GZ, "password_change", "SUSPENDED", "1"),), Reason.SUSPENDED),
        (
            (("s", "kind:grassroots_platform", GZ, "password_change", "ABOVE_CEILING", "1"),),
            Reason.ABOVE_CEILING,
        ),
    ],
)
def test_refusal_reasons(lines, reason):
    d = decide(policy(*lines), GRASS, GZ_CARD, "password_change", NOW)
    assert not d.allowed and d.reason == reason


def test_window_is_half_open():
    state = policy(grant("outlet:grass", GZ, "password_change", "1", nbf=NOW, exp="2026-06-02T00:00:00Z"))
    assert decide(state, GRASS, GZ_CARD, "password_change", NOW).allowed
    assert decide(state, GRASS, GZ_CARD, "password_change", "2026-06-02T00:00:00Z").reason == Reason.EXPIRED


def test_grant_that_does_not_reach_the_card_tenant_is_outside_tenant():
    d = decide(
        policy(grant("outlet:grass", GZ, "password_change", "1")),
        GRASS,
        CardFacts(SZ, "105", ACTIVE),
        "password_change",
        NOW,
    )
    assert d.reason == Reason.OUTSIDE_TENANT and d.grant_ids == ("1",)


def test_province_grant_serves_a_shenzhen_card_in_guangzhou():
    d = decide(
        policy(grant("outlet:grass", "cn/440000", "password_change", "1")),
        GRASS,
        CardFacts(SZ, "105", ACTIVE),
        "password_change",
        NOW,
    )
    assert d.allowed


def test_financial_services_only_at_the_cards_own_bank():
    state = policy(grant("outlet:bank", GZ, "financial_password_reset", "1"))
    assert decide(state, BANK, GZ_CARD, "financial_password_reset", NOW).allowed
    other_bank = CardFacts(TH, "102", ACTIVE)
    assert decide(state, BANK, other_bank, "financial_password_reset", NOW).reason == Reason.WRONG_BANK
    assert decide(state, GRASS, GZ_CARD, "financial_password_reset", NOW).reason == Reason.WRONG_BANK


def test_channel_must_fit_the_outlet_kind():
    d = decide(policy(), PHARM, CardFacts(TH, "105", NEW), "activation", NOW, channel="hospital_first_use")
    assert d.reason == Reason.CHANNEL_MISMATCH


def test_card_state_refuses_before_the_policy():
    state = policy(grant("outlet:grass", GZ, "activation", "1"))
    cancelled = CardFacts(TH, "105", CardState("cancelled", "not_enabled", "default"))
    assert decide(state, GRASS, cancelled, "activation", NOW).reason == Reason.CARD_STATE
    assert decide(state, GRASS, GZ_CARD, "activation", NOW).reason == Reason.CARD_STATE  # already enabled


def test_changes_apply_incrementally():
    state = policy()
    line = grant("outlet:grass", GZ, "password_change", "9")
    state.apply(Change(1, "add", "p", line[1:]))
    assert decide(state, GRASS, GZ_CARD, "password_change", NOW).allowed
    state.apply(Change(2, "remove", "p", line[1:]))
    assert decide(state, GRASS, GZ_CARD, "password_change", NOW).reason == Reason.NO_GRANT
    state.apply(Change(3, "add", "c", (GZ, "designated_pharmacy", "password_change")))
    assert state.ceilings[(GZ, "designated_pharmacy")] == frozenset({"password_change"})
    state.apply(Change(4, "remove", "c", (GZ, "designated_pharmacy", "password_change")))
    assert state.ceilings == {}
