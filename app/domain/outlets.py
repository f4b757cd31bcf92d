"""The rules one outlet record must meet, wherever it comes from: tenant files, the API, CSV imports.

Keys are the record keys of the tenant files and CSV columns (`id`, `tenant`, `kind`, `name`,
`bank`, `nbs_code`, `address`); each reader maps them onto its own way of pointing at a value (a
file line, a GraphQL input field, a CSV row and column). Checks that need the database (does the
tenant exist, is the id or NBS code taken) are the callers' business.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.domain.catalogue import OutletKind
from app.domain.errors import DomainError
from app.domain.regions import TenantLevel, TenantPath, parse_tenant_path, validate_nbs_code
from app.domain.text import clean_display_text

OUTLET_ID = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")
BANK_CODE = re.compile(r"[0-9A-Z]{3,16}")
KEYS = ("id", "tenant", "kind", "name", "bank", "nbs_code", "address")
REQUIRED = frozenset({"id", "tenant", "kind", "name"})
LIMITS = {"id": 64, "tenant": 64, "kind": 32, "name": 128, "bank": 16, "nbs_code": 12, "address": 255}
DISPLAY_KEYS = ("name", "address")


@dataclass(frozen=True)
class Problem:
    key: str
    reason: str
    # True when the record lacks a value it needs (a file reports that at the table, not at a key).
    missing: bool = False


@dataclass(frozen=True)
class OutletFields:
    id: str
    tenant: TenantPath
    kind: str
    name: str
    bank_code: str | None
    nbs_code: str | None
    address: str | None


def clean_text(key: str, value: str | None) -> tuple[str | None, Problem | None]:
    """A stripped value, None when blank; a problem when a required one is blank or it is too long.
    Names and addresses are display text (app/domain/text.py): NFC, no control or format characters."""
    if value is not None and key in DISPLAY_KEYS:
        try:
            value = clean_display_text(value)
        except DomainError as err:
            return None, Problem(key, err.message)
    value = value.strip() if value is not None else None
    if not value:
        return None, Problem(key, f"{key} is required", missing=True) if key in REQUIRED else None
    if len(value) > LIMITS[key]:
        return None, Problem(key, f"longer than {LIMITS[key]} characters")
    return value, None


def check_record(values: dict[str, str | None]) -> tuple[OutletFields | None, list[Problem]]:
    """Check cleaned values (None = absent or already refused by the reader) against the outlet rules.

    Returns the fields when every required value is there and no rule refused the record.
    """
    problems: list[Problem] = []
    outlet_id, kind, name = values.get("id"), values.get("kind"), values.get("name")
    bank, nbs = values.get("bank"), values.get("nbs_code")
    if outlet_id is not None and not OUTLET_ID.fullmatch(outlet_id):
        problems.append(Problem("id", "use 2-64 of a-z, 0-9, '.', '_', '-'"))
    tenant = None
    if values.get("tenant") is not None:
        try:
            tenant = parse_tenant_path(values["tenant"])
        except DomainError as err:
            problems.append(Problem("tenant", err.message))
    if kind is not None and kind not in OutletKind.__members__.values():
        allowed = ", ".join(k.value for k in OutletKind)
        problems.append(Problem("kind", f"unknown outlet kind {kind!r} (allowed: {allowed})"))
        kind = None
    problems += _kind_field_problems(kind, tenant, bank, nbs)
    if problems or None in (outlet_id, tenant, kind, name):
        return None, problems
    return OutletFields(outlet_id, tenant, kind, name, bank, nbs, values.get("address")), problems


def _kind_field_problems(
    kind: str | None, tenant: TenantPath | None, bank: str | None, nbs: str | None
) -> list[Problem]:
    """A bank outlet carries its bank code; a grassroots platform its NBS code under its county."""
    problems = []
    if kind == OutletKind.bank_outlet and bank is None:
        problems.append(Problem("bank", "a bank_outlet needs its 'bank' code", missing=True))
    if bank is not None and kind != OutletKind.bank_outlet:
        problems.append(Problem("bank", "only a bank_outlet carries a bank code"))
    if bank is not None and not BANK_CODE.fullmatch(bank):
        problems.append(Problem("bank", "bank code is 3-16 of 0-9, A-Z"))
    if kind == OutletKind.grassroots_platform:
        if nbs is None:
            problems.append(Problem("nbs_code", "a grassroots_platform needs its 'nbs_code'", missing=True))
        elif tenant is not None:
            # Grassroots platforms sit in a county, or in a prefecture that has no counties.
            if tenant.level not in (TenantLevel.county, TenantLevel.prefecture):
                problems.append(Problem("tenant", "a grassroots platform belongs to a county"))
            else:
                try:
                    validate_nbs_code(nbs, tenant.code)
                except DomainError as err:
                    problems.append(Problem("nbs_code", err.message))
    elif nbs is not None:
        problems.append(Problem("nbs_code", "only a grassroots_platform carries an NBS code"))
    return problems
