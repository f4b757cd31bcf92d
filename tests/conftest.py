"""Shared fixtures: a real, migrated database per test, on SQLite or on PostgreSQL.

With SSC_TEST_DATABASE_URL unset every database test runs on a fresh SQLite file. With it set (the
second pass of .ci/run) they run on a PostgreSQL database that this session creates and drops; a
server that cannot be reached fails the run instead of skipping it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.store import migrate
from app.store.db import make_async_engine, make_session_factory, make_sync_engine

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PG_ENV = "SSC_TEST_DATABASE_URL"
PG_SKIP_REASON = f"{PG_ENV} is not set; PostgreSQL tests run in the second pass of .ci/run"


def _pg_admin_url() -> str | None:
    return os.environ.get(PG_ENV) or None


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


# Workers the tests start (in process or as `ssc serve`) keep their policy snapshots in a directory
# of this run's, never in the project's var/: set on import, before any Settings is made.
SNAPSHOT_DIR = tempfile.mkdtemp(prefix="ssc-test-snapshots-")
os.environ["SSC_POLICY_SNAPSHOT_DIR"] = SNAPSHOT_DIR


@pytest.fixture(scope="session", autouse=True)
def snapshots_removed() -> Iterator[None]:
    yield
    shutil.rmtree(SNAPSHOT_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str | None]:
    """A database of this run's own on the PostgreSQL server, or None when the variable is unset."""
    admin = _pg_admin_url()
    if admin is None:
        yield None
        return
    name = f"ssc_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        conn = psycopg.connect(_libpq(admin), autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as err:
        pytest.fail(f"{PG_ENV}={admin} is set but the server cannot be reached: {err}", pytrace=False)
    with conn:
        conn.execute(f'create database "{name}"')
    url = make_url(admin).set(database=name).render_as_string(hide_password=False)
    migrate.upgrade(url)
    try:
        yield url
    finally:
        with psycopg.connect(_libpq(admin), autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """One migrated SQLite file; each test gets a copy, which is much faster than migrating again."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    migrate.upgrade(f"sqlite:///{path}")
    engine = make_sync_engine(f"sqlite:///{path}")
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


def _truncate_all(url: str) -> None:
    engine = make_sync_engine(url)
    with engine.begin() as connection:
        tables = (
            connection.execute(
                text(
                    "select tablename from pg_tables"
                    " where schemaname = 'public' and tablename <> 'alembic_version'"
                )
            )
            .scalars()
            .all()
        )
        # Audit events refuse TRUNCATE except in the archive's own transactions (migration 0005).
        connection.execute(text("set local ssc.audit_archiving = 'on'"))
        connection.execute(
            text("truncate " + ", ".join(f'"{t}"' for t in tables) + " restart identity cascade")
        )
    engine.dispose()


@pytest.fixture
def db_url(postgres_server, sqlite_template, tmp_path) -> str:
    """A migrated, empty database for this test."""
    if postgres_server is not None:
        _truncate_all(postgres_server)
        return postgres_server
    path = tmp_path / "ssc.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def pg_url(postgres_server) -> str:
    """For tests that only make sense on PostgreSQL (advisory locks, LISTEN/NOTIFY)."""
    if postgres_server is None:
        pytest.skip(PG_SKIP_REASON)
    _truncate_all(postgres_server)
    return postgres_server


@pytest.fixture
async def sessions(db_url) -> AsyncIterator:
    engine = make_async_engine(db_url)
    try:
        yield make_session_factory(engine)
    finally:
        await engine.dispose()


@pytest.fixture
def tenants_dir() -> Path:
    return PROJECT_ROOT / "tenants"
