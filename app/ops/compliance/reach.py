"""Which outlets could perform a card service on cards of a tenant at a time, as one set: what
`whoCan` counts and pages through.

`past.who_can` decides outlet by outlet, which over 100,000 outlets is a second of Python. Here each
kind of line becomes a set the database hands over as one string, and the answer is set algebra:
- a line naming outlets reaches those of them open at the time below its domain;
- a line naming a kind reaches the open outlets of that kind below its domain; a statutory one,
  less the subtrees whose ceilings exclude the service for that kind;
- an outlet is able when an allow line reaches it and no deny line does (financial services: bank
  outlets only).
This is `past.who_can`'s rule read line by line instead of outlet by outlet; the page shown is then
explained by `past.who_can` itself, and tests/ops/compliance/test_history.py checks both against the
engine over a replayed log.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from app.authz.decision import DOM, EFT, EXP, NBF, SUB
from app.authz.past import Line, ceiling_table, statutory_lines
from app.domain.catalogue import DEFAULT_CEILING, FINANCIAL_SERVICES, OutletKind
from app.domain.ceilings import CeilingTable
from app.domain.regions import ancestor_paths, dom_in
from app.store.policy_history import subjects_at, values_at
from app.store.queries import in_subtree

BANK_GROUP = "kind:" + OutletKind.bank_outlet
_KIND_SUBJECTS = frozenset("kind:" + kind for kind in OutletKind)
_FINANCIAL = frozenset(s.value for s in FINANCIAL_SERVICES)
# Up to this many outlets named by one domain's lines, their group lines are read by name; beyond
# it (a bulk grant), the open outlets below the domain are read in one range and intersected.
_BY_NAME = 500
_CHUNK = 10_000
GROUP = ("v0", "v1", "v2")  # a group line's columns: outlet:<id>, kind:<kind>, tenant


async def ceilings_at(session: AsyncSession, at: datetime) -> CeilingTable:
    rows = await values_at(session, at, GROUP, lambda t: [t.c.ptype == "c"])
    return ceiling_table(rows)


class _Reach:
    """The open outlets at one time that lines of one service can reach."""

    def __init__(self, session: AsyncSession, at: datetime, service: str) -> None:
        self.session, self.at = session, at
        self.banks_only = service in _FINANCIAL

    async def below(self, domain: str, kind: str | None = None) -> set[str]:
        """The open outlets below `domain` (of `kind`; financial services: bank outlets only)."""
        if self.banks_only:
            if kind not in (None, BANK_GROUP):
                return set()
            kind = BANK_GROUP

        def where(t):
            found = [t.c.ptype == "g", in_subtree(t.c.v2, domain)]
            return [*found, t.c.v1 == kind] if kind else found

        return await subjects_at(self.session, self.at, where)

    async def named(self, domain: str, subjects: set[str]) -> set[str]:
        """Those of `subjects` (outlet:<id>) open below `domain`."""
        if len(subjects) > _BY_NAME:
            return subjects & await self.below(domain)
        ordered, found = sorted(subjects), set()
        for start in range(0, len(ordered), _CHUNK):
            chunk = ordered[start : start + _CHUNK]
            rows = await values_at(
                self.session, self.at, GROUP, lambda t, chunk=chunk: [t.c.ptype == "g", t.c.v0.in_(chunk)]
            )
            found.update(
                r[0] for r in rows if dom_in(r[2], domain) and (not self.banks_only or r[1] == BANK_GROUP)
            )
        return found

    async def line_subjects(self, domain: str, service: str, effect: str, at: str) -> set[str]:
        """The subjects of the grant and block lines of `service` in `domain` with `effect`, in their
        window at policy time `at`."""

        def where(t):
            return [
                t.c.ptype == "p",
                t.c.v2 == service,
                t.c.v1 == domain,
                t.c.v3 == effect,
                t.c.v4 <= at,
                t.c.v5 > at,
            ]

        return await subjects_at(self.session, self.at, where)


async def able_outlets(
    session: AsyncSession,
    card_tenant: str,
    service: str,
    at: datetime,
    policy_at: str,
    ceilings: CeilingTable,
) -> set[str]:
    """The subjects (outlet:<id>) of the outlets that could perform `service` on cards of
    `card_tenant` at `at` (`policy_at`: the same instant as a policy time)."""
    reach = _Reach(session, at, service)
    able: set[str] = set()
    barred: set[str] = set()
    for domain in ancestor_paths(card_tenant):
        for effect, into in (("allow", able), ("deny", barred)):
            subjects = await reach.line_subjects(domain, service, effect, policy_at)
            kinds = subjects & _KIND_SUBJECTS  # a few lookups, not a pass over 100,000 names
            if subjects - kinds:
                into |= await reach.named(domain, subjects - kinds)
            for kind in sorted(kinds):
                into |= await reach.below(domain, kind)
    for line in statutory_lines(service, card_tenant):
        if line[NBF] <= policy_at < line[EXP]:
            if line[EFT] == "deny":
                barred |= await reach.below(line[DOM], line[SUB])
            else:
                able |= await _statutory_reach(reach, line, service, ceilings)
    return able - barred if barred else able


async def _statutory_reach(reach: _Reach, line: Line, service: str, ceilings: CeilingTable) -> set[str]:
    """The outlets a statutory line reaches: its kind below its domain, less the subtrees of the
    tenants whose ceiling for that kind leaves the service out (`statutory_allowed`, by subtree)."""
    kind, domain = line[SUB], line[DOM]
    name = kind.removeprefix("kind:")
    if service not in {s.value for s in DEFAULT_CEILING[OutletKind(name)]}:
        return set()
    cut = [tenant for (tenant, of), services in ceilings.items() if of == name and service not in services]
    if any(dom_in(domain, tenant) for tenant in cut):
        return set()
    found = await reach.below(domain, kind)
    for tenant in cut:
        if dom_in(tenant, domain):
            found -= await reach.below(tenant, kind)
    return found
