"""The rules of who may do what, written again for the isolation machine from DESIGN.md §5 (the role
table) and the issue texts, without calling the product: the machine checks the product against it.

A person's roles are (role, department path) pairs; a department reaches its own path and every path
below it (`cn/4400001` is not below `cn/440000`)."""

from __future__ import annotations

from dataclasses import dataclass, field

ADMINS = {"province_admin", "city_admin", "county_admin"}
# Who reads outlets and grants (everyone), who changes them, who approves: DESIGN.md §5's table.
READS_OUTLETS = ADMINS | {"operator", "approver", "auditor"}
WRITES_OUTLETS = ADMINS | {"operator"}
WRITES_GRANTS = ADMINS | {"operator"}
APPROVES = {"approver"}
WRITES_CEILINGS = ADMINS
MAX_LIVE_KEYS = 5  # partner keys an outlet may hold at once (the issue of partner keys)
# Nobody gives a role above their own, and only an administrator gives roles at all.
RANK = {"province_admin": 3, "city_admin": 2, "county_admin": 1, "operator": 0, "approver": 0, "auditor": 0}
# An administrator role runs a department of its level: (national,) province, prefecture, county.
LEVELS = {"province_admin": (0, 1), "city_admin": (2,), "county_admin": (3,)}

# The card services the machine grants to each outlet kind it registers: inside the default
# catalogue, none bank-side, none statutory for the kind (so an outlet's permissions are its grants).
SERVICES = {
    "hrss_hall": ("info_inquiry", "password_change"),
    "hotline": ("info_inquiry", "loss_release"),
    "self_service_terminal": ("info_inquiry", "temp_loss_report"),
}


def under(path: str, top: str) -> bool:
    return path == top or path.startswith(top + "/")


def level(path: str) -> int:
    return path.count("/")


def role_fits(role: str, tenant: str) -> bool:
    return level(tenant) in LEVELS.get(role, (0, 1, 2, 3))


@dataclass
class Person:
    name: str
    token: str
    roles: tuple[tuple[str, str], ...]

    def may(self, roles: set[str], path: str) -> bool:
        return any(role in roles and under(path, scope) for role, scope in self.roles)

    def may_give(self, role: str, path: str) -> bool:
        return any(
            RANK[held] > 0 and RANK[role] <= RANK[held] and under(path, scope) for held, scope in self.roles
        )


@dataclass
class OutletModel:
    tenant: str
    kind: str


@dataclass
class GrantModel:
    tenant: str
    outlet: str
    service: str
    proposer: str
    state: str
    version: int


@dataclass
class World:
    """What the machine believes the platform holds."""

    two_person: set[str]  # departments where grants need a second person (and everything below)
    people: dict[str, Person] = field(default_factory=dict)
    outlets: dict[str, OutletModel] = field(default_factory=dict)
    grants: dict[str, GrantModel] = field(default_factory=dict)
    # key -> outlet id, in the order issued (a draw among keys must not depend on their random text)
    keys: dict[str, str] = field(default_factory=dict)
    ceilings: dict[tuple[str, str], set[str]] = field(default_factory=dict)  # (department, kind) -> services

    def needs_second_person(self, tenant: str) -> bool:
        return any(under(tenant, top) for top in self.two_person)

    def ceiling(self, tenant: str, kind: str) -> set[str]:
        """What a grant by `tenant` to `kind` may carry: the ceilings of the departments above it."""
        allowed = set(SERVICES[kind])
        for (top, of_kind), services in self.ceilings.items():
            if of_kind == kind and top != tenant and under(tenant, top):
                allowed &= services
        return allowed

    def ceiling_set(self, tenant: str, kind: str, services: set[str]) -> None:
        """The new ceiling ends the grants below it that exceed it: in force ones are suspended,
        proposals rejected."""
        self.ceilings[(tenant, kind)] = services
        for grant in self.grants.values():
            outlet = self.outlets[grant.outlet]
            if (
                outlet.kind == kind
                and grant.tenant != tenant
                and under(grant.tenant, tenant)
                and grant.state in ("active", "proposed")
                and grant.service not in self.ceiling(grant.tenant, kind)
            ):
                grant.state = "suspended" if grant.state == "active" else "rejected"
                grant.version += 1

    def card_answer(self, outlet: str, card_tenant: str, purpose: str) -> str | None:
        """What a card status asked by `outlet` for `purpose` on a card of `card_tenant` gets: None
        (the status), NOT_FOUND when no grant in force to the outlet covers cards of that department
        (as if the card did not exist), FORBIDDEN when some do but none for `purpose`. A grant by T
        covers an outlet and a card both in T's subtree (DESIGN.md §5)."""
        covering = {
            g.service
            for g in self.grants.values()
            if g.outlet == outlet
            and g.state == "active"
            and under(card_tenant, g.tenant)
            and under(self.outlets[outlet].tenant, g.tenant)
        }
        if not covering:
            return "NOT_FOUND"
        return None if purpose in covering else "FORBIDDEN"

    def services_in_force(self, outlet: str) -> set[str]:
        return {g.service for g in self.grants.values() if g.outlet == outlet and g.state == "active"}
