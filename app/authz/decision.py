"""`decide(outlet, card, service, at)`: the business enforce plus the statutory rules, with a reason.

Order of the checks (the first that refuses names the reason):
1. financial services only at bank outlets of the card's own service bank (WRONG_BANK);
2. an activation channel must fit the outlet kind (CHANNEL_MISMATCH);
3. the card's state must allow the service (CARD_STATE);
4. the policy: a matching deny line is BLOCKED; an allow line decides, except a statutory line that
   a ceiling on the outlet's path narrows (ABOVE_CEILING).
When no line allows, the most specific explanation wins: a suspended grant that would apply
(ABOVE_CEILING when a ceiling suspended it, SUSPENDED otherwise), a grant outside its window
(EXPIRED, NOT_YET_VALID), a grant that covers the outlet but not the card's tenant
(OUTSIDE_TENANT), and otherwise NO_GRANT.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.authz.policy_state import BUILTIN_PREFIX, BusinessPolicy
from app.authz.projection import outlet_subject
from app.domain.card import CardState, service_allowed_in_state
from app.domain.catalogue import FINANCIAL_SERVICES, ActivationChannel, OutletKind, channel_fits
from app.domain.ceilings import statutory_allowed
from app.domain.reasons import Reason
from app.domain.regions import dom_in

# Field positions of a business `p` line: sub, dom, svc, eft, nbf, exp, gid.
SUB, DOM, SVC, EFT, NBF, EXP, GID = range(7)
_FINANCIAL = frozenset(s.value for s in FINANCIAL_SERVICES)


@dataclass(frozen=True, slots=True)
class OutletFacts:
    id: str
    kind: str
    tenant: str
    bank_code: str | None = None


@dataclass(frozen=True, slots=True)
class CardFacts:
    tenant: str
    service_bank: str
    state: CardState


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: Reason | None
    grant_ids: tuple[str, ...] = ()
    explanation: dict = field(default_factory=dict)


def _refuse(reason: Reason, why: str, grant_ids: tuple[str, ...] = ()) -> Decision:
    return Decision(False, reason, grant_ids, {"why": why})


def decide(
    policy: BusinessPolicy,
    outlet: OutletFacts,
    card: CardFacts,
    service: str,
    at: str,
    channel: str | None = None,
) -> Decision:
    if service in _FINANCIAL and (
        outlet.kind != OutletKind.bank_outlet or outlet.bank_code != card.service_bank
    ):
        return _refuse(
            Reason.WRONG_BANK, f"{service} is done only by outlets of the card's bank {card.service_bank}"
        )
    if channel is not None and not channel_fits(ActivationChannel(channel), OutletKind(outlet.kind)):
        return _refuse(Reason.CHANNEL_MISMATCH, f"a {outlet.kind} cannot report activation via {channel}")
    if not service_allowed_in_state(card.state, service):
        return _refuse(
            Reason.CARD_STATE,
            f"{service} is not possible on a card in state {card.state.status}"
            f" / {card.state.social_function} / PIN {card.state.pin_state}",
        )
    return policy_decision(policy, outlet, card.tenant, service, at)


def policy_decision(
    policy: BusinessPolicy, outlet: OutletFacts, card_tenant: str, service: str, at: str
) -> Decision:
    """Step 4 alone: what the policy says for any card of `card_tenant` whose state allows the
    service (the compliance plane asks it of past policies)."""
    subject = outlet_subject(outlet.id)
    found = policy.enforcer.explain(subject, outlet.tenant, card_tenant, service, at)
    if found.deny:
        gids = tuple(line[GID] for line in found.deny)
        return _refuse(Reason.BLOCKED, "a tenant blocked this outlet for this service", gids)
    ceilings = policy.ceilings
    allow = [
        line
        for line in found.allow
        if not line[GID].startswith(BUILTIN_PREFIX)
        or statutory_allowed(outlet.tenant, outlet.kind, service, ceilings)
    ]
    if allow:
        return Decision(True, None, tuple(line[GID] for line in allow), {"roles": list(found.roles)})
    if found.allow:
        return _refuse(
            Reason.ABOVE_CEILING,
            "a ceiling on the outlet's tenant path excludes this statutory service",
            tuple(line[GID] for line in found.allow),
        )
    suspended = [
        marker
        for role in found.roles
        for marker in policy.suspensions.get((role, service), ())
        if dom_in(outlet.tenant, marker.dom) and dom_in(card_tenant, marker.dom)
    ]
    if suspended:
        reason = (
            Reason.ABOVE_CEILING
            if any(m.why == Reason.ABOVE_CEILING for m in suspended)
            else Reason.SUSPENDED
        )
        return _refuse(reason, "the grant that would apply is suspended", tuple(m.gid for m in suspended))
    windowed = [line for line in found.inactive if dom_in(outlet.tenant, line[DOM])]
    if windowed:
        expired = [line for line in windowed if line[EXP] <= at]
        if expired:
            return _refuse(
                Reason.EXPIRED, "the grant that would apply has expired", tuple(x[GID] for x in expired)
            )
        return _refuse(
            Reason.NOT_YET_VALID,
            "the grant that would apply is not valid yet",
            tuple(x[GID] for x in windowed),
        )
    reach = policy.enforcer.explain(subject, outlet.tenant, outlet.tenant, service, at)
    if reach.allow:
        return _refuse(
            Reason.OUTSIDE_TENANT,
            "the outlet's grants do not cover cards of this tenant",
            tuple(line[GID] for line in reach.allow),
        )
    return _refuse(Reason.NO_GRANT, "no grant for this outlet and service")
