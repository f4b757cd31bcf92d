"""The permission matrix: every outlet of a department's area × every card service, at any time, with
the granting reference in each cell (the grant and its document, or the statutory rule).

A cell is what the outlet could do for cards of its own area then (`whatCan` for every outlet at
once): the same rules as `whoCan` (app/authz/past.py), one pass over the outlets per card service.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.authz.decision import GID
from app.authz.past import is_statutory, member, statutory_lines, who_can
from app.authz.projection import policy_time
from app.domain.catalogue import CardService
from app.domain.regions import ancestor_paths
from app.ops.auth import Actor
from app.ops.compliance.history import audited_tenant, checked_moment
from app.ops.compliance.labels import STATUTORY_NAMES, cst_text, kind_name, service_name
from app.ops.compliance.reach import ceilings_at
from app.store.policy_history import VALUES, values_at
from app.store.queries import in_subtree
from app.store.tables import Grant, Outlet

SERVICES = tuple(s.value for s in CardService)
_CHUNK = 10_000


@dataclass(frozen=True)
class Cell:
    grant_ids: tuple[str, ...]  # the grants, or builtin:... for a statutory rule
    references: tuple[str, ...]  # what a person reads: "#12 穗人社函〔2026〕7号", or the rule's name


@dataclass(frozen=True)
class MatrixRow:
    outlet_id: str
    name: str
    kind: str
    tenant: str
    cells: dict[str, Cell]  # by card service; absent: not allowed


@dataclass(frozen=True)
class Matrix:
    tenant: str
    at: datetime
    services: tuple[str, ...]
    rows: list[MatrixRow]


async def _names(session: AsyncSession, ids: Sequence[str]) -> dict[str, str]:
    found = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        found.update((await session.exec(select(Outlet.id, Outlet.name).where(Outlet.id.in_(chunk)))).all())
    return found


async def _documents(session: AsyncSession, gids: Sequence[str]) -> dict[str, str]:
    ids = sorted({int(g) for g in gids if g.isdigit()})
    found = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        rows = (await session.exec(select(Grant.id, Grant.document_ref).where(Grant.id.in_(chunk)))).all()
        found.update((str(i), ref) for i, ref in rows)
    return found


async def matrix_at(session: AsyncSession, tenant: str, moment: datetime) -> Matrix:
    """The matrix of `tenant`'s area at `moment`, without asking who wants it (the CLI's operator)."""
    groups = await values_at(
        session, moment, ("v0", "v1", "v2"), lambda t: [t.c.ptype == "g", in_subtree(t.c.v2, tenant)]
    )
    members = sorted((member(g) for g in groups), key=lambda m: m.outlet_id)
    above = ancestor_paths(tenant)
    rows = await values_at(
        session,
        moment,
        VALUES,
        lambda t: [t.c.ptype == "p", t.c.v1.in_(above) | in_subtree(t.c.v1, tenant)],
    )
    lines = [tuple(v for v in row if v is not None) for row in rows]
    ceilings = await ceilings_at(session, moment)
    at = policy_time(moment)
    held: dict[str, dict[str, tuple]] = {}
    for service in SERVICES:
        of_service = [line for line in lines if line[2] == service] + statutory_lines(service, tenant)
        if not any(line[3] == "allow" for line in of_service):
            continue
        for outlet_id, found in who_can(of_service, members, ceilings, service, at).items():
            held.setdefault(outlet_id, {})[service] = found
    documents = await _documents(
        session, [line[GID] for cells in held.values() for ls in cells.values() for line in ls]
    )
    names = await _names(session, [m.outlet_id for m in members])

    def cell(found: tuple) -> Cell:
        gids = tuple(dict.fromkeys(line[GID] for line in found))
        refs = tuple(
            STATUTORY_NAMES.get(g, g) if is_statutory(line) else f"#{g} {documents.get(g, '')}".strip()
            for g, line in ((line[GID], line) for line in found)
        )
        return Cell(gids, tuple(dict.fromkeys(refs)))

    matrix_rows = [
        MatrixRow(
            m.outlet_id,
            names.get(m.outlet_id, ""),
            m.kind,
            m.tenant,
            {s: cell(found) for s, found in held.get(m.outlet_id, {}).items()},
        )
        for m in members
    ]
    return Matrix(tenant, moment, SERVICES, matrix_rows)


async def permission_matrix(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    tenant: str,
    at: datetime | None = None,
    *,
    request_id: str | None = None,
) -> Matrix:
    """The matrix of `tenant`'s area at `at` (default now), for someone who may audit it."""
    path = await audited_tenant(sessions, actor, tenant, request_id)
    async with sessions() as session:
        return await matrix_at(session, path, await checked_moment(session, at))


MATRIX_HEADERS_FIXED = ("网点编码", "网点名称", "网点类型", "所属部门")


def matrix_table(matrix: Matrix) -> tuple[list[str], Iterator[list[str]]]:
    """The matrix as a table people open: Chinese headers, one row per outlet, each allowed cell
    holding its references (several separated by "；")."""
    headers = [*MATRIX_HEADERS_FIXED, *(service_name(s) for s in matrix.services)]

    def rows() -> Iterator[list[str]]:
        for row in matrix.rows:
            cells = ["；".join(row.cells[s].references) if s in row.cells else "" for s in matrix.services]
            yield [row.outlet_id, row.name, kind_name(row.kind), row.tenant, *cells]

    return headers, rows()


def matrix_title(matrix: Matrix) -> str:
    return f"授权矩阵 {matrix.tenant}（截至北京时间 {cst_text(matrix.at)}）"
