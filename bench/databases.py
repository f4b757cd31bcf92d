"""Where a benchmark keeps its data: a fresh SQLite file, or a fresh database of its own on the
PostgreSQL server `--database-url` names (created for the run, dropped after it, so a benchmark
never writes into a database someone uses)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

DATABASE_URL_HELP = (
    "a PostgreSQL server, e.g. postgresql://postgres@127.0.0.1:5432/test: the run creates a database "
    "of its own there and drops it after (default: a fresh SQLite file in a temporary directory)"
)


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def bench_database(server_url: str | None, workdir: Path, name: str) -> Iterator[str]:
    """The URL of an empty database (not yet migrated) for one run."""
    if server_url is None:
        yield f"sqlite:///{workdir / f'{name}.db'}"
        return
    if make_url(server_url).get_backend_name() != "postgresql":
        raise SystemExit("--database-url names a PostgreSQL server")
    database = f"ssc_bench_{name}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_libpq(server_url), autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'create database "{database}"')
    try:
        yield make_url(server_url).set(database=database).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_libpq(server_url), autocommit=True) as conn:
            conn.execute(f'drop database if exists "{database}" with (force)')


def backend(url: str) -> str:
    """ "sqlite" or "postgresql", for the figures' labels."""
    return make_url(url).get_backend_name()
