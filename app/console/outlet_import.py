"""Importing outlets from a CSV file into a department of the area (app/ops/outlets/imports: all
rows or none). A refused file comes back with every problem by row and column; a file saved by
Excel on a Chinese Windows desktop (GB 18030) is read as well as UTF-8."""

from __future__ import annotations

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from app.console.login import Console
from app.console.pages import Problem, posted, show, signed_in
from app.ops.auth import Actor
from app.ops.errors import OpsError
from app.ops.outlets.imports import MAX_BYTES, MAX_ROWS, import_outlets

SHOWN = 50  # the imported outlets listed on the answer (the rest are counted)


def decoded(raw: bytes) -> str:
    """The file's text: UTF-8 (with or without its byte-order mark), else GB 18030 (a superset of
    GBK, what Excel writes for "CSV" on a Chinese Windows)."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            return raw.decode("gb18030")
        except UnicodeDecodeError:
            raise OpsError("BAD_INPUT", "the file is neither UTF-8 nor GB 18030 text", field="csv") from None


def _page(request: Request, console: Console, actor: Actor, **context) -> Response:
    problem = context.get("problem")
    return show(
        request,
        console,
        actor,
        "outlet_import.html",
        status=problem.status if problem else 200,
        max_rows=MAX_ROWS,
        max_mb=MAX_BYTES // (1024 * 1024),
        **{"tenant": "", "imported": None, "problem": None, "rows": [], **context},
    )


@signed_in
async def import_page(request: Request, console: Console, actor: Actor) -> Response:
    return _page(request, console, actor, tenant=request.query_params.get("tenant", ""))


@posted
async def import_submit(request: Request, console: Console, actor: Actor, fields: dict[str, str]) -> Response:
    tenant = fields.get("tenant", "").strip()
    upload = (await request.form()).get("file")
    try:
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise OpsError("BAD_INPUT", "choose the CSV file to import", field="file")
        raw = await upload.read(MAX_BYTES + 1)
        if len(raw) > MAX_BYTES:
            too_large = f"the file is larger than {MAX_BYTES // (1024 * 1024)} MB"
            raise OpsError("BAD_INPUT", too_large, field="file")
        imported = await console.run(request, actor, import_outlets, tenant, decoded(raw))
    except OpsError as err:
        problem = Problem.of(err)
        rows = err.extensions.get("problems") or []
        count = err.extensions.get("problemCount", len(rows))
        return _page(request, console, actor, tenant=tenant, problem=problem, rows=rows, count=count)
    return _page(request, console, actor, tenant=tenant, imported=imported, shown=imported[:SHOWN])
