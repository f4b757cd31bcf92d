"""Ceilings: how far a tenant's descendants may extend card services to each outlet kind.

A ceiling is set by tenant T for one outlet kind and lists card services. It binds what T's
descendants grant, never what T grants itself (a department is bounded by those above it, not by
the rules it set for those below). So the effective ceiling for a grant made by tenant G to an
outlet of kind K is the default catalogue intersected with every ceiling for K set by a strict
ancestor of G.

The statutory lines are the nation's own allowance at every outlet of a kind; every tenant on the
outlet's path, down to and including the outlet's own tenant, may narrow them for its outlets.
"""

from __future__ import annotations

from collections.abc import Mapping

from app.domain.catalogue import DEFAULT_CEILING, OutletKind, parse_card_service
from app.domain.regions import ancestor_paths

# (tenant path, outlet kind) -> the services that tenant allows its descendants to extend.
CeilingTable = Mapping[tuple[str, str], frozenset[str]]


def effective_ceiling_for_grant(
    granting_tenant: str, kind: str, ceilings: CeilingTable
) -> tuple[frozenset[str], dict[str, str]]:
    """(services a grant by `granting_tenant` to `kind` may carry, service -> tenant that cut it).

    The second value lets an error say which tenant's ceiling a refused grant exceeds.
    """
    allowed = frozenset(s.value for s in DEFAULT_CEILING[OutletKind(kind)])
    cut_by: dict[str, str] = {}
    for tenant in ancestor_paths(granting_tenant)[:-1]:
        limit = ceilings.get((tenant, kind))
        if limit is None:
            continue
        for service in allowed - limit:
            cut_by.setdefault(service, tenant)
        allowed &= limit
    return allowed, cut_by


def statutory_allowed(outlet_tenant: str, kind: str, service: str, ceilings: CeilingTable) -> bool:
    """Whether every tenant from the root down to the outlet's own still allows a statutory line."""
    if service not in {s.value for s in DEFAULT_CEILING[OutletKind(kind)]}:
        return False
    for tenant in ancestor_paths(outlet_tenant):
        limit = ceilings.get((tenant, kind))
        if limit is not None and service not in limit:
            return False
    return True


def parse_ceiling_services(services: list[str] | tuple[str, ...]) -> frozenset[str]:
    """Validate a ceiling's service list (unknown names raise DomainError UNKNOWN_CARD_SERVICE)."""
    return frozenset(parse_card_service(s).value for s in services)
