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

# The card services the machine grants to each outlet kind it registers: inside the default
# catalogue, none bank-side, none statutory for the kind (so an outlet's permissions are its grants).
SERVICES = {
    "hrss_hall": ("info_inquiry", "password_change"),
    "hotline": ("info_inquiry", "loss_release"),
    "self_service_terminal": ("info_inquiry", "temp_loss_report"),
}


def under(path: str, top: str) -> bool:
    return path == top or path.startswith(top + "/")


@dataclass
class Person:
    name: str
    token: str
    roles: tuple[tuple[str, str], ...]

    def may(self, roles: set[str], path: str) -> bool:
        return any(role in roles and under(path, scope) for role, scope in self.roles)


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
    keys: dict[str, str] = field(default_factory=dict)  # key -> outlet id

    def needs_second_person(self, tenant: str) -> bool:
        return any(under(tenant, top) for top in self.two_person)

    def services_in_force(self, outlet: str) -> set[str]:
        return {g.service for g in self.grants.values() if g.outlet == outlet and g.state == "active"}
