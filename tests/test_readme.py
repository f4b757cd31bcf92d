"""README.md's tables say what the `ssc` command and the settings really are (issue 12: they had
missed `ssc keys`, `cards import --workers` and three settings)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import typer

from app.cli import cli
from app.ops.principals.credentials import create_principal_with_token
from app.ops.tenants.apply import apply_tenant_files
from app.settings import Settings
from app.web import create_app
from tests.livesrv import serve

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def _table(heading: str) -> list[str]:
    """The first cells of the rows of the table under `heading`."""
    section = README.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| ---")]
    return [row.split(" | ")[0].strip("| ") for row in rows[1:]]


def _commands() -> dict[str, object]:
    """Every command of `ssc`, by its full name (`keys create`), with its options."""
    found: dict[str, object] = {}

    def walk(group, prefix: str) -> None:
        for name, command in group.commands.items():
            if hasattr(command, "commands"):  # a group of commands (typer's own click)
                walk(command, f"{prefix}{name} ")
            else:
                found[f"{prefix}{name}"] = command

    walk(typer.main.get_command(cli), "")
    return found


def test_every_command_and_option_is_in_the_table_and_nothing_else():
    rows = {
        re.match(r"`ssc ([a-z-]+(?: [a-z-]+)?)", cell).group(1): cell for cell in _table("The `ssc` command")
    }
    commands = _commands()
    assert set(rows) == set(commands)
    for name, command in commands.items():
        options = {opt for param in command.params for opt in param.opts if opt.startswith("--")}
        for option in options:
            assert option in rows[name], f"`ssc {name}`: {option} is missing from README.md"


def test_every_setting_is_in_the_table_and_nothing_else():
    listed = {name for cell in _table("Settings") for name in re.findall(r"`(SSC_[A-Z_]+)`", cell)}
    assert listed == {f"SSC_{name.upper()}" for name in Settings.model_fields}


def test_examples_use_one_address_that_matches_the_settings():
    defaults = Settings()
    assert f"SSC_URL=http://{defaults.host}:{defaults.port}/graphql" in README
    assert "localhost:" not in README
    assert README.count(f":{defaults.port}") == 2  # the definition and `make serve`'s comment


def _examples_after(marker: str) -> list[str]:
    """The JSON bodies of the `q '…'` calls in the first shell block after `marker`."""
    block = README.split(marker, 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    return [line[3:-1] for line in block.splitlines() if line.startswith("q '") and line.endswith("'")]


async def test_the_readme_example_shows_the_grant_in_force_at_once(db_url, sessions, tenants_dir):
    """Issue 12: the README's own example showed `effectiveServices` without the grant just made."""
    await apply_tenant_files(sessions, tenants_dir)
    admin = await create_principal_with_token(
        sessions, tenant_path="cn/440000/440300/440305", role="county_admin", name="ns.admin"
    )
    bodies = _examples_after("A county administrator in Nanshan")
    assert len(bodies) == 3
    with serve(create_app(Settings(database_url=db_url))) as base:
        async with httpx.AsyncClient(timeout=30) as client:
            answers = [
                (
                    await client.post(
                        f"{base}/graphql",
                        content=body.encode(),
                        headers={
                            "content-type": "application/json",
                            "Authorization": f"Bearer {admin.token}",
                        },
                    )
                ).json()
                for body in bodies
            ]
    assert all("errors" not in answer for answer in answers), answers
    assert answers[1]["data"]["grantService"]["grant"]["state"] == "active"
    outlet = answers[2]["data"]["outlet"]
    assert outlet["grants"][0]["state"] == "active" and outlet["effectiveServices"] == ["password_change"]
