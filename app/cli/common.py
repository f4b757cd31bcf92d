"""What every `ssc` command shares: the consoles, failing with a message, running a use case."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from app.domain.errors import DomainError
from app.settings import get_settings
from app.store import migrate as migrations
from app.store.db import make_async_engine, make_session_factory

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
T = TypeVar("T")


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)


def migrated_database() -> str:
    """The configured database's URL, refusing one that is not at the newest schema."""
    url = get_settings().database_url
    current, head = migrations.current_revision(url), migrations.head_revision()
    if current != head:
        raise fail(f"the database is at revision {current or 'empty'}, not {head}: run `ssc migrate` first")
    return url


def run_with_db(work: Callable[..., Awaitable[T]]) -> T:
    """Run an async use case against the configured database, refusing an unmigrated one."""
    url = migrated_database()

    async def main() -> T:
        engine = make_async_engine(url)
        try:
            return await work(make_session_factory(engine))
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except DomainError as e:
        raise fail(f"{e.message} [{e.code}]") from None


@contextlib.contextmanager
def progress_bar(label: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A progress bar on the terminal's stderr (nothing when it is not a terminal); yields `advance(n)`."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, disable=not err.is_terminal) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)
