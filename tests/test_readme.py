"""README.md's tables say what the `ssc` command and the settings really are (issue 12: they had
missed `ssc keys`, `cards import --workers` and three settings)."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from app.cli import cli
from app.settings import Settings

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
        re.match(r"`ssc ([a-z]+(?: [a-z]+)?)", cell).group(1): cell for cell in _table("The `ssc` command")
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
