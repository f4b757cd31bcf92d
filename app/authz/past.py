"""The business model's answer over a set of policy lines, for the compliance questions over many
outlets at once ("who could reset passwords in Tianhe on 3 March").

`decide` answers one outlet at a time through the indexed enforcer; asking it for each of 100,000
outlets costs seconds. `who_can` reaches the same answer for all of them from the lines themselves,
one pass over the outlets' group lines: an outlet may perform the service on cards of a tenant when a
window-valid allow line names the outlet or its kind, with a domain above both the outlet and the card
tenant (a statutory line only where no ceiling on the outlet's path excludes the service), and no such
deny line does. tests/ops/compliance/test_history.py checks it against `decide` over a replayed log.

Card facts do not enter (its state, its bank): financial services are answered for bank outlets
only, since no other outlet can do them on any card.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

from app.authz.decision import DOM, EFT, EXP, GID, NBF, SUB
from app.authz.model import read_policy_lines
from app.authz.policy_state import BUILTIN_PREFIX, POLICIES_DIR
from app.domain.catalogue import FINANCIAL_SERVICES, OutletKind
from app.domain.ceilings import CeilingTable, statutory_allowed
from app.domain.regions import ancestor_paths, dom_in

Line = tuple[str, ...]  # a business p rule: sub, dom, svc, eft, nbf, exp, gid
_FINANCIAL = frozenset(s.value for s in FINANCIAL_SERVICES)
_BANK_GROUP = "kind:" + OutletKind.bank_outlet
_STATUTORY: tuple[Line, ...] = tuple(
    tuple(line[1:]) for line in read_policy_lines(POLICIES_DIR / "business_builtin.csv") if line[0] == "p"
)


class Member(NamedTuple):
    """An outlet as its group line places it: `g, outlet:<id>, kind:<kind>, <tenant>` (the line's
    own values: 100,000 of them are read for one question)."""

    subject: str  # outlet:<id>
    group: str  # kind:<kind>
    tenant: str

    @property
    def outlet_id(self) -> str:
        return self.subject.removeprefix("outlet:")

    @property
    def kind(self) -> str:
        return self.group.removeprefix("kind:")


def member(group: Sequence[str]) -> Member:
    return Member(group[0], group[1], group[2])


def statutory_lines(service: str | None, card_tenant: str) -> list[Line]:
    """The statutory lines that could apply to `service` (None: any) on cards of `card_tenant`."""
    domains = set(ancestor_paths(card_tenant))
    return [line for line in _STATUTORY if service in (None, line[2]) and line[DOM] in domains]


def is_statutory(line: Line) -> bool:
    return line[GID].startswith(BUILTIN_PREFIX)


def who_can(
    lines: Iterable[Line],
    members: Iterable[Member],
    ceilings: CeilingTable,
    service: str,
    at: str,
) -> dict[str, tuple[Line, ...]]:
    """Outlet id -> the allow lines that let it perform `service` at policy time `at`, given the p
    lines of `service` whose domain is above the card tenant (statutory ones included) and the
    outlets' group lines."""
    allow: dict[str, list[Line]] = {}
    deny: dict[str, list[Line]] = {}
    for line in lines:
        if line[NBF] <= at < line[EXP]:
            (deny if line[EFT] == "deny" else allow).setdefault(line[SUB], []).append(line)
    banks_only = service in _FINANCIAL
    statutory_ok: dict[tuple[str, str], bool] = {}  # (tenant, group) -> the ceilings let it through
    get_allow, get_deny = allow.get, deny.get
    found: dict[str, tuple[Line, ...]] = {}
    for m in members:
        subject, group, tenant = m
        if banks_only and group != _BANK_GROUP:
            continue
        own, shared = get_allow(subject), get_allow(group)
        if own is None and shared is None:
            continue
        candidates = [line for line in (*(own or ()), *(shared or ())) if dom_in(tenant, line[DOM])]
        if not candidates:
            continue
        if deny and any(dom_in(tenant, line[DOM]) for line in (*get_deny(subject, ()), *get_deny(group, ()))):
            continue
        held = []
        for line in candidates:
            if line[GID].startswith(BUILTIN_PREFIX):
                ok = statutory_ok.get((tenant, group))
                if ok is None:
                    ok = statutory_ok[(tenant, group)] = statutory_allowed(tenant, m.kind, service, ceilings)
                if not ok:
                    continue
            held.append(line)
        if held:
            found[m.outlet_id] = tuple(held)
    return found


def ceiling_table(rules: Iterable[Sequence[str]]) -> dict[tuple[str, str], frozenset[str]]:
    """Ceilings from their `c` lines (tenant, kind, "svc svc ...")."""
    return {(tenant, kind): frozenset(services.split()) for tenant, kind, services in rules}
