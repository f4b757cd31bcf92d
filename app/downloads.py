"""Report downloads for auditors and administrators: the permission matrix and the audit trail as
CSV or XLSX, streamed (a spreadsheet is not a GraphQL answer). Served beside the GraphQL endpoint
(app/graphql/reports.py, bearer tokens) and by the console (its session), with the same query:

    /reports/permission-matrix?tenant=cn/440000/440100&at=2026-03-03T09:00:00%2B08:00&format=xlsx
    /reports/audit-events?tenant=...&from=...&to=...&actor=...&outlet=...&action=...&decision=...
        &reason=...&format=csv

The same use cases decide who may read what; each entry point answers their refusals its own way.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from app.ops.auth import Actor
from app.ops.compliance import events, reports
from app.ops.compliance.labels import cst_text
from app.ops.compliance.tables import XlsxTable, csv_chunks, csv_header, csv_lines, write_xlsx
from app.ops.errors import OpsError
from app.ops.inputs import accepted_time_parser
from app.settings import Settings

FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
FILE_CHUNK = 256 * 1024


def _format(request: Request) -> str:
    wanted = request.query_params.get("format", "csv")
    if wanted not in FORMATS:
        raise OpsError("BAD_INPUT", "format is csv or xlsx", field="format")
    return wanted


def _time_reader(settings: Settings, request: Request) -> Callable[[str], object]:
    parse = accepted_time_parser(settings.accepted_time_earliest, settings.accepted_time_latest)

    def read(name: str):
        text = request.query_params.get(name)
        if text is None:
            return None
        try:
            return parse(text)
        except ValueError as err:
            raise OpsError("BAD_INPUT", f"{name}: {err}", field=name) from None

    return read


def _file_stream(path: Path) -> AsyncIterator[bytes]:
    async def chunks() -> AsyncIterator[bytes]:
        try:
            with path.open("rb") as fh:
                while chunk := await asyncio.to_thread(fh.read, FILE_CHUNK):
                    yield chunk
        finally:
            path.unlink(missing_ok=True)

    return chunks()


def _temporary() -> Path:
    handle, name = tempfile.mkstemp(prefix="ssc-report-", suffix=".xlsx")
    os.close(handle)
    return Path(name)


async def _xlsx(title: str, headers: list[str], rows) -> Path:
    """Write the workbook to a temporary file off the event loop (XLSX is a zip: it is sent once whole)."""
    path = _temporary()
    try:
        await asyncio.to_thread(write_xlsx, path, title, headers, rows)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def _answer(kind: str, filename: str, body: AsyncIterator[bytes]) -> StreamingResponse:
    headers = {
        "Content-Disposition": f'attachment; filename="{filename}.{kind}"',
        "Cache-Control": "no-store",
    }
    return StreamingResponse(body, media_type=FORMATS[kind], headers=headers)


async def permission_matrix(request: Request, actor: Actor, settings: Settings) -> Response:
    """The matrix of the asked department at the asked time; raises the use case's refusal."""
    kind, read_time = _format(request), _time_reader(settings, request)
    tenant = request.query_params.get("tenant")
    if not tenant:
        raise OpsError("BAD_INPUT", "tenant is required", field="tenant")
    matrix = await reports.permission_matrix(
        request.app.state.sessions, actor, tenant, read_time("at"), request_id=None
    )
    headers, rows = reports.matrix_table(matrix)
    name = f"permission-matrix-{matrix.tenant.replace('/', '-')}-{cst_text(matrix.at)[:10]}"
    if kind == "csv":

        async def body() -> AsyncIterator[bytes]:
            for chunk in csv_chunks(headers, rows):
                yield chunk

        return _answer(kind, name, body())
    return _answer(kind, name, _file_stream(await _xlsx(reports.matrix_title(matrix), headers, rows)))


async def audit_events(request: Request, actor: Actor, settings: Settings) -> Response:
    """The audit events the filters select; raises the use case's refusal before anything is sent."""
    kind, read_time = _format(request), _time_reader(settings, request)
    q = request.query_params
    filters = events.EventFilter(
        tenant=q.get("tenant"),
        since=read_time("from"),
        until=read_time("to"),
        actor=q.get("actor"),
        outlet=q.get("outlet"),
        action=q.get("action"),
        decision=q.get("decision"),
        reason=q.get("reason"),
    )
    batches = events.stream_events(request.app.state.sessions, actor, filters)
    # The first batch is read before answering, so a refusal is an error, not a broken download.
    first = await anext(batches, [])
    name = f"audit-events-{(filters.tenant or 'all').replace('/', '-')}"

    async def all_batches() -> AsyncIterator[list[list[str]]]:
        yield [events.event_cells(e) for e in first]
        async for batch in batches:
            yield [events.event_cells(e) for e in batch]

    if kind == "csv":

        async def body() -> AsyncIterator[bytes]:
            yield csv_header(events.EVENT_HEADERS)
            async for rows in all_batches():
                for chunk in csv_lines(rows):
                    yield chunk

        return _answer(kind, name, body())
    path = _temporary()
    try:
        table = await asyncio.to_thread(
            XlsxTable, path, "审计记录 " + (filters.tenant or ""), events.EVENT_HEADERS
        )
        try:
            async for rows in all_batches():
                await asyncio.to_thread(table.add, rows)
        finally:
            await asyncio.to_thread(table.close)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return _answer(kind, name, _file_stream(path))
