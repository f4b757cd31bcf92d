"""The `ssc` command (typer): the everyday commands in app/cli/commands.py, the compliance plane's
(`ssc audit …`, `ssc report …`) in app/cli/audit.py and app/cli/report.py, people's console passwords
(`ssc principals …`) in app/cli/principals.py, key rotation (`ssc key-rotation …`) in
app/cli/rotation.py."""

from __future__ import annotations

from app.cli.audit import audit_cli
from app.cli.commands import cli
from app.cli.principals import principals_cli
from app.cli.report import report_cli
from app.cli.rotation import rotation_cli

cli.add_typer(audit_cli, name="audit")
cli.add_typer(report_cli, name="report")
cli.add_typer(principals_cli, name="principals")
cli.add_typer(rotation_cli, name="key-rotation")


def main() -> None:
    cli()
