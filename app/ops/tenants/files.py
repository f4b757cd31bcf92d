"""Reading and validating the declarative tenant trees in `tenants/*.toml`.

A file declares `[[tenant]]` tables (path, name, optional settings) and `[[outlet]]` tables (id,
tenant, kind, name and the kind's own fields). Validation is complete before anything touches the
database, and every error names the file, the line and key, and the reason.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.domain import outlets as outlet_rules
from app.domain.errors import DomainError
from app.domain.regions import parse_tenant_path
from app.domain.settings import required_above
from app.domain.text import clean_display_text

TENANT_KEYS = {"path", "name", "two_person_approval", "pin_lock_threshold"}
OUTLET_KEYS = set(outlet_rules.KEYS)
MAX_NAME = 128


@dataclass(frozen=True)
class TenantSpec:
    path: str
    name: str
    two_person_approval: bool | None
    pin_lock_threshold: int | None
    source: str


@dataclass(frozen=True)
class OutletSpec:
    id: str
    tenant: str
    kind: str
    name: str
    bank_code: str | None
    nbs_code: str | None
    address: str | None
    source: str


@dataclass
class TenantTree:
    tenants: dict[str, TenantSpec] = field(default_factory=dict)
    outlets: dict[str, OutletSpec] = field(default_factory=dict)


@dataclass(frozen=True)
class FileProblem:
    file: str
    line: int | None
    key: str
    reason: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.key}: {self.reason}"


class TenantFileError(Exception):
    def __init__(self, problems: list[FileProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def _table_lines(text: str, header: str) -> list[int]:
    """1-based line numbers of each `[[header]]`, so errors can point at the right table."""
    pattern = re.compile(rf"^\s*\[\[\s*{header}\s*\]\]")
    return [i for i, line in enumerate(text.splitlines(), 1) if pattern.match(line)]


def _key_line(text: str, start: int | None, key: str) -> int | None:
    if start is None:
        return None
    lines = text.splitlines()
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
    for number in range(start + 1, len(lines) + 1):
        line = lines[number - 1]
        if line.lstrip().startswith("["):
            break
        if pattern.match(line):
            return number
    return start


class _FileReader:
    """Validates one file's tables, collecting every problem instead of stopping at the first."""

    def __init__(self, path: Path, label: str) -> None:
        self.label = label
        self.text = path.read_text(encoding="utf-8")
        self.problems: list[FileProblem] = []

    def problem(self, table: str, index: int, start: int | None, key: str | None, reason: str) -> None:
        line = _key_line(self.text, start, key) if key else start
        where = f"{table}[{index}]" + (f".{key}" if key else "")
        self.problems.append(FileProblem(self.label, line, where, reason))

    def text_field(self, raw, table, index, start, key, *, required=True, limit=MAX_NAME) -> str | None:
        value = raw.get(key)
        if value is None:
            if required:
                self.problem(table, index, start, None, f"missing required key {key!r}")
            return None
        if not isinstance(value, str) or not value.strip():
            self.problem(table, index, start, key, "must be a non-empty string")
            return None
        if len(value) > limit:
            self.problem(table, index, start, key, f"longer than {limit} characters")
            return None
        if key == "name" and table == "tenant":
            try:
                return clean_display_text(value)
            except DomainError as err:
                self.problem(table, index, start, key, err.message)
                return None
        return value.strip()

    def unknown_keys(self, raw: dict[str, Any], allowed: set[str], table, index, start) -> None:
        for key in sorted(set(raw) - allowed):
            self.problem(table, index, start, key, f"unknown key (allowed: {', '.join(sorted(allowed))})")

    def tenants(self) -> list[TenantSpec]:
        data = self.data
        starts = _table_lines(self.text, "tenant")
        specs = []
        for i, raw in enumerate(data.get("tenant", [])):
            start = starts[i] if i < len(starts) else None
            self.unknown_keys(raw, TENANT_KEYS, "tenant", i, start)
            path = self.text_field(raw, "tenant", i, start, "path", limit=64)
            name = self.text_field(raw, "tenant", i, start, "name")
            if path is not None:
                try:
                    parsed = parse_tenant_path(path)
                    path = parsed.path
                except DomainError as err:
                    self.problem("tenant", i, start, "path", err.message)
                    path = None
            approval = raw.get("two_person_approval")
            if approval is not None and not isinstance(approval, bool):
                self.problem("tenant", i, start, "two_person_approval", "must be true or false")
            threshold = raw.get("pin_lock_threshold")
            if threshold is not None and (
                isinstance(threshold, bool) or not isinstance(threshold, int) or not 1 <= threshold <= 10
            ):
                self.problem("tenant", i, start, "pin_lock_threshold", "must be a whole number from 1 to 10")
            if path and name:
                specs.append(TenantSpec(path, name, approval, threshold, f"{self.label}:{start or 0}"))
        return specs

    def outlets(self) -> list[OutletSpec]:
        starts = _table_lines(self.text, "outlet")
        specs = []
        for i, raw in enumerate(self.data.get("outlet", [])):
            start = starts[i] if i < len(starts) else None
            self.unknown_keys(raw, OUTLET_KEYS, "outlet", i, start)
            values = {
                key: self.text_field(
                    raw, "outlet", i, start, key, required=key in outlet_rules.REQUIRED, limit=limit
                )
                for key, limit in outlet_rules.LIMITS.items()
            }
            fields, problems = outlet_rules.check_record(values)
            for p in problems:
                self.problem("outlet", i, start, None if p.missing else p.key, p.reason)
            if fields is not None:
                specs.append(
                    OutletSpec(
                        fields.id,
                        fields.tenant.path,
                        fields.kind,
                        fields.name,
                        fields.bank_code,
                        fields.nbs_code,
                        fields.address,
                        f"{self.label}:{start or 0}",
                    )
                )
        return specs

    def read(self) -> tuple[list[TenantSpec], list[OutletSpec]]:
        try:
            self.data = tomllib.loads(self.text)
        except tomllib.TOMLDecodeError as err:
            line = getattr(err, "lineno", None)
            self.problems.append(FileProblem(self.label, line, "toml", str(err)))
            return [], []
        for key in sorted(set(self.data) - {"tenant", "outlet"}):
            self.problems.append(
                FileProblem(self.label, None, key, "unknown table (use [[tenant]] or [[outlet]])")
            )
        return self.tenants(), self.outlets()


def load_tree(directory: Path, known_tenants: set[str] | frozenset[str] = frozenset()) -> TenantTree:
    """Read every `*.toml` under `directory`; raise TenantFileError listing all problems.

    `known_tenants` are paths already in the database, so a file may hang its tenants or outlets
    under a tenant created through the API.
    """
    files = sorted(directory.glob("*.toml")) if directory.is_dir() else [directory]
    if not files:
        raise TenantFileError([FileProblem(str(directory), None, "files", "no *.toml tenant files found")])
    tree = TenantTree()
    problems: list[FileProblem] = []
    for path in files:
        reader = _FileReader(path, str(path))
        tenants, outlets = reader.read()
        problems.extend(reader.problems)
        for spec in tenants:
            if spec.path in tree.tenants:
                first = tree.tenants[spec.path].source
                problems.append(
                    _at(spec.source, "tenant.path", f"duplicate tenant {spec.path} (first at {first})")
                )
            tree.tenants[spec.path] = spec
        for spec in outlets:
            if spec.id in tree.outlets:
                first = tree.outlets[spec.id].source
                problems.append(
                    _at(spec.source, "outlet.id", f"duplicate outlet id {spec.id!r} (first at {first})")
                )
            tree.outlets[spec.id] = spec
    available = set(known_tenants) | set(tree.tenants)
    for spec in tree.tenants.values():
        parent = parse_tenant_path(spec.path).parent
        if parent is not None and parent.path not in available:
            problems.append(_at(spec.source, "tenant.path", f"parent tenant {parent.path} is not declared"))
    approvals = {path: spec.two_person_approval for path, spec in tree.tenants.items()}
    for spec in tree.tenants.values():
        above = required_above(spec.path, approvals) if spec.two_person_approval is False else None
        if above is not None:
            problems.append(
                _at(
                    spec.source,
                    "tenant.two_person_approval",
                    f"{above} requires two-person approval below it; a department may tighten it, "
                    "never loosen it",
                )
            )
    for spec in tree.outlets.values():
        if spec.tenant not in available:
            problems.append(_at(spec.source, "outlet.tenant", f"tenant {spec.tenant} is not declared"))
    nbs_seen: dict[str, str] = {}
    for spec in tree.outlets.values():
        if spec.nbs_code:
            if spec.nbs_code in nbs_seen:
                problems.append(
                    _at(
                        spec.source,
                        "outlet.nbs_code",
                        f"NBS code {spec.nbs_code} already used by outlet {nbs_seen[spec.nbs_code]!r}",
                    )
                )
            nbs_seen[spec.nbs_code] = spec.id
    if problems:
        raise TenantFileError(problems)
    return tree


def _at(source: str, key: str, reason: str) -> FileProblem:
    file, line = source.rsplit(":", 1)
    return FileProblem(file, int(line) or None, key, reason)
