"""`ssc report matrix`: the permission matrix of an area at a time, as a file people open."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.cli.audit import parse_time
from app.cli.common import fail, out, run_with_db

report_cli = typer.Typer(help="Reports for compliance officers.", no_args_is_help=True)


@report_cli.command("matrix")
def report_matrix(
    tenant: Annotated[str, typer.Option(help="The department whose area it covers, e.g. cn/440000/440100.")],
    output: Annotated[Path, typer.Option(help="The file to write.")],
    at: Annotated[
        str | None, typer.Option(help="At this time (default now; Beijing time without a zone).")
    ] = None,
    format: Annotated[str, typer.Option("--format", help="csv or xlsx.")] = "csv",
) -> None:
    """Every outlet of the area × every card service, with the grant (and its document) or statutory
    rule in each cell it could perform, as it stood at `--at`."""
    from app.domain.errors import DomainError
    from app.domain.regions import parse_tenant_path
    from app.ops.compliance.history import checked_moment
    from app.ops.compliance.reports import matrix_at, matrix_table, matrix_title
    from app.ops.compliance.tables import write_csv, write_xlsx
    from app.ops.errors import OpsError

    if format not in ("csv", "xlsx"):
        raise fail(f"--format {format}: one of csv, xlsx")
    try:
        path = parse_tenant_path(tenant).path
    except DomainError as e:
        raise fail(f"--tenant: {e.message}") from None
    moment = parse_time(at, "--at")

    async def build(sessions):
        async with sessions() as session:
            return await matrix_at(session, path, await checked_moment(session, moment, "--at"))

    try:
        matrix = run_with_db(build)
    except OpsError as e:
        raise fail(e.message) from None
    headers, rows = matrix_table(matrix)
    output.parent.mkdir(parents=True, exist_ok=True)
    if format == "csv":
        count = write_csv(output, headers, rows)
    else:
        count = write_xlsx(output, matrix_title(matrix), headers, rows)
    out.print(f"{count:,} outlets written to {output}", highlight=False)
