"""Administrative roles of people (admin plane, DESIGN.md §5) and where each may be held."""

from __future__ import annotations

from enum import StrEnum

from app.domain.errors import DomainError
from app.domain.regions import TenantLevel


class AdminRole(StrEnum):
    province_admin = "province_admin"
    city_admin = "city_admin"
    county_admin = "county_admin"
    operator = "operator"
    approver = "approver"
    auditor = "auditor"


# An administrator role names the level of department it runs. The national department has no
# role of its own in the design; its administrators hold `province_admin` at `cn`, which the
# admin plane extends to every descendant. The other roles may be held at any level.
ROLE_LEVELS: dict[AdminRole, frozenset[TenantLevel]] = {
    AdminRole.province_admin: frozenset({TenantLevel.national, TenantLevel.province}),
    AdminRole.city_admin: frozenset({TenantLevel.prefecture}),
    AdminRole.county_admin: frozenset({TenantLevel.county}),
    AdminRole.operator: frozenset(TenantLevel),
    AdminRole.approver: frozenset(TenantLevel),
    AdminRole.auditor: frozenset(TenantLevel),
}


def parse_role(value: str) -> AdminRole:
    try:
        return AdminRole(value)
    except ValueError:
        allowed = ", ".join(r.value for r in AdminRole)
        raise DomainError(
            "UNKNOWN_ROLE", f"unknown role {value!r} (allowed: {allowed})", field="role"
        ) from None


def check_role_level(role: AdminRole, level: TenantLevel) -> None:
    if level not in ROLE_LEVELS[role]:
        where = ", ".join(sorted(lv.value for lv in ROLE_LEVELS[role]))
        raise DomainError(
            "ROLE_LEVEL",
            f"{role.value} is held at a {where} department, not a {level.value} one",
            field="role",
        )
