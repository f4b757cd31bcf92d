"""`ssc principals …`: what an operator does for people from the server, outside the API."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from app.cli.common import err, fail, run_with_db

principals_cli = typer.Typer(help="People: console passwords.", no_args_is_help=True)


@principals_cli.command("set-password")
def set_password(
    name: Annotated[str, typer.Argument(help="The person's login name.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin.")
    ] = False,
) -> None:
    """Give a person a console password (12+ characters of three kinds); they enrol their second
    factor (a TOTP app) at their next login, and their open console sessions end."""
    from app.ops.errors import OpsError
    from app.ops.principals.logins import set_password as set_it

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    try:
        enrolling = run_with_db(lambda sessions: set_it(sessions, name, password))
    except OpsError as e:
        raise fail(f"{e.message} [{e.code}]") from None
    then = (
        "they enrol their second factor at their next login" if enrolling else "their second factor is kept"
    )
    err.print(f"password set for {name}; {then}.", highlight=False)
