"""Importing outlets from CSV text: validated as a whole, then all written or none.

Columns (header row required, any order): id, tenant, kind, name and optionally bank, nbs_code,
address; the same rules as the tenant files. Row 1 is the header, so the first outlet is row 2.
Every row must lie in the import's tenant (or below it); ids and NBS codes must be new. A refused
import raises BAD_INPUT listing `problems` (row, column, message) and writes nothing.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from types import SimpleNamespace

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.authz.projection import outlet_group_line
from app.domain import outlets as outlet_rules
from app.domain.catalogue import OutletKind
from app.domain.regions import dom_in
from app.ops.auth import Actor, authorize
from app.ops.errors import OpsError
from app.ops.outlets.closing import snapshot
from app.ops.outlets.views import tenant_input_path
from app.ops.refusals import audited_use_case
from app.store import policy
from app.store.audit import append_events
from app.store.queries import in_subtree
from app.store.tables import Outlet, Tenant
from app.store.tables.common import utcnow

MAX_ROWS = 10_000
MAX_BYTES = 2 * 1024 * 1024
# A refusal lists this many problems at most (and says how many there were).
MAX_REPORTED = 200
# Rows per `IN (...)` lookup: well below the bind-parameter limits of SQLite and PostgreSQL.
LOOKUP_CHUNK = 1_000


@dataclass(frozen=True)
class RowProblem:
    row: int
    column: str | None
    message: str


@dataclass(frozen=True)
class ImportRow:
    row: int
    fields: outlet_rules.OutletFields


def _refused(problems: list[RowProblem]) -> OpsError:
    listed = [{"row": p.row, "column": p.column, "message": p.message} for p in problems[:MAX_REPORTED]]
    first = problems[0]
    return OpsError(
        "BAD_INPUT",
        f"{len(problems)} problem(s), nothing was imported; first: row {first.row}: {first.message}",
        field="csv",
        problems=listed,
        problemCount=len(problems),
    )


def _header(cells: list[str]) -> tuple[list[str], list[RowProblem]]:
    names = [c.strip().lower() for c in cells]
    if names:
        names[0] = names[0].removeprefix("\ufeff")  # spreadsheets often save UTF-8 with a BOM
    problems = []
    for name in names:
        if name not in outlet_rules.KEYS:
            allowed = ", ".join(outlet_rules.KEYS)
            problems.append(RowProblem(1, name, f"unknown column (allowed: {allowed})"))
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(RowProblem(1, name, "column appears twice"))
    for name in sorted(outlet_rules.REQUIRED - set(names)):
        problems.append(RowProblem(1, name, "missing column"))
    return names, problems


def parse_csv(text: str) -> tuple[list[ImportRow], list[RowProblem]]:
    """Every row checked against the outlet rules; problems name row and column."""
    reader = csv.reader(io.StringIO(text), strict=True)
    rows: list[ImportRow] = []
    problems: list[RowProblem] = []
    number = 0
    try:
        header = next(reader, None)
        if header is None:
            return [], [RowProblem(1, None, "empty file: the header row is required")]
        names, problems = _header(header)
        if problems:
            return [], problems
        number, outlets = 1, 0
        for cells in reader:
            number += 1
            if not any(c.strip() for c in cells):
                continue  # blank lines (a trailing newline, spacing) are not outlets
            outlets += 1
            if outlets > MAX_ROWS:
                problems.append(RowProblem(number, None, f"more than {MAX_ROWS} rows"))
                break
            if len(cells) != len(names):
                problems.append(RowProblem(number, None, f"{len(cells)} values, the header has {len(names)}"))
                continue
            values: dict[str, str | None] = dict.fromkeys(outlet_rules.KEYS)
            for name, cell in zip(names, cells, strict=True):
                values[name], problem = outlet_rules.clean_text(name, cell)
                if problem is not None:
                    problems.append(RowProblem(number, problem.key, problem.reason))
            fields, found = outlet_rules.check_record(values)
            problems += [RowProblem(number, p.key, p.reason) for p in found]
            if fields is not None:
                rows.append(ImportRow(number, fields))
    except csv.Error as err:
        problems.append(RowProblem(number + 1, None, f"not valid CSV: {err}"))
    if not rows and not problems:
        problems.append(RowProblem(2, None, "no outlets below the header"))
    return rows, problems


def _duplicates(rows: list[ImportRow]) -> list[RowProblem]:
    problems, ids, nbs = [], {}, {}
    for r in rows:
        if r.fields.id in ids:
            problems.append(RowProblem(r.row, "id", f"id {r.fields.id} is also on row {ids[r.fields.id]}"))
        ids.setdefault(r.fields.id, r.row)
        code = r.fields.nbs_code
        if code is not None:
            if code in nbs:
                problems.append(RowProblem(r.row, "nbs_code", f"NBS code {code} is also on row {nbs[code]}"))
            nbs.setdefault(code, r.row)
    return problems


async def _taken(session: AsyncSession, column, values: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(values), LOOKUP_CHUNK):
        chunk = values[start : start + LOOKUP_CHUNK]
        found.update((await session.exec(select(column).where(column.in_(chunk)))).all())
    return found


async def _database_problems(
    session: AsyncSession, scope: str, rows: list[ImportRow]
) -> tuple[dict[str, Tenant], list[RowProblem]]:
    tenants = {t.path: t for t in (await session.exec(select(Tenant).where(in_subtree(Tenant.path, scope))))}
    ids = await _taken(session, Outlet.id, [r.fields.id for r in rows])
    nbs = await _taken(session, Outlet.nbs_code, [r.fields.nbs_code for r in rows if r.fields.nbs_code])
    parents = {path.rsplit("/", 1)[0] for path in tenants}
    problems = []
    for r in rows:
        path = r.fields.tenant.path
        if not dom_in(path, scope):
            problems.append(RowProblem(r.row, "tenant", f"{path} is outside the import's tenant {scope}"))
        elif path not in tenants:
            problems.append(RowProblem(r.row, "tenant", f"there is no tenant {path}"))
        elif r.fields.kind == OutletKind.grassroots_platform and path in parents:
            # The rules let a prefecture without counties hold grassroots platforms; this one has some.
            problems.append(
                RowProblem(r.row, "tenant", f"a grassroots platform belongs to its county, not {path}")
            )
        if r.fields.id in ids:
            problems.append(RowProblem(r.row, "id", f"an outlet {r.fields.id} already exists"))
        if r.fields.nbs_code in nbs:
            problems.append(RowProblem(r.row, "nbs_code", f"NBS code {r.fields.nbs_code} is already used"))
    return tenants, problems


async def _audit_creations(
    session: AsyncSession, actor: Actor, rows: list[ImportRow], records: list[dict], request_id: str | None
) -> None:
    """One `outlet.create` event per outlet, in its tenant's chain, as if each was created alone."""
    at = utcnow()
    await append_events(
        session,
        [
            (
                r.fields.tenant.path,
                {
                    "actor": actor.label,
                    "action": "outlet.create",
                    "target_type": "outlet",
                    "target_id": r.fields.id,
                    "request_id": request_id,
                    "at": at,
                    "detail": {
                        "after": snapshot(SimpleNamespace(**record, version=1), r.fields.tenant.path),
                        "import": f"row {r.row}",
                    },
                },
            )
            for r, record in zip(rows, records, strict=True)
        ],
    )


@audited_use_case("outlet.import")
async def import_outlets(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    tenant: str,
    text: str,
    *,
    request_id: str | None = None,
) -> list[str]:
    """Create every outlet of the CSV in `tenant`'s subtree, or none; returns their ids in file order."""
    scope = tenant_input_path(tenant)
    if len(text.encode()) > MAX_BYTES:
        raise OpsError(
            "BAD_INPUT", f"the CSV text is larger than {MAX_BYTES // (1024 * 1024)} MB", field="csv"
        )
    await authorize(
        sessions, actor, "write", "outlet", scope, target_id=f"import:{scope}", request_id=request_id
    )
    rows, problems = parse_csv(text)
    try:
        async with sessions() as session, session.begin():
            tenants, found = await _database_problems(session, scope, rows)
            problems = sorted([*problems, *_duplicates(rows), *found], key=lambda p: p.row)
            if problems:
                raise _refused(problems)
            now = utcnow()
            records = [
                {
                    "id": r.fields.id,
                    "tenant_id": tenants[r.fields.tenant.path].id,
                    "kind": r.fields.kind,
                    "name": r.fields.name,
                    "bank_code": r.fields.bank_code,
                    "nbs_code": r.fields.nbs_code,
                    "address": r.fields.address,
                    "status": "open",
                    "created_at": now,
                    "updated_at": now,
                }
                for r in rows
            ]
            await session.exec(insert(Outlet), params=records)
            await policy.add_lines(
                session,
                [outlet_group_line(r.fields.id, r.fields.kind, r.fields.tenant.path) for r in rows],
                by=actor.label,
            )
            await _audit_creations(session, actor, rows, records, request_id)
    except IntegrityError:
        raise OpsError(
            "CONFLICT", "an id or NBS code of the file was just taken; nothing was imported"
        ) from None
    return [r.fields.id for r in rows]
