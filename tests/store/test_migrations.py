from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import app.store.tables  # noqa: F401
from app.store import migrate
from app.store.db import make_sync_engine


def test_fresh_database_reaches_head(tmp_path):
    url = f"sqlite:///{tmp_path / 'new.db'}"
    assert migrate.current_revision(url) is None
    migrate.upgrade(url)
    assert migrate.current_revision(url) == migrate.head_revision()
    migrate.upgrade(url)  # a second run is a no-op, not an error
    assert migrate.current_revision(url) == migrate.head_revision()


def test_migrations_match_the_tables(db_url):
    """The migrations build exactly the schema the code declares, on the database under test."""
    engine = make_sync_engine(db_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, SQLModel.metadata)
    engine.dispose()
    assert diff == []


def test_sqlite_runs_in_wal_with_foreign_keys(tmp_path):
    engine = make_sync_engine(f"sqlite:///{tmp_path / 'p.db'}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def test_postgres_database_is_migrated(pg_url):
    assert migrate.current_revision(pg_url) == migrate.head_revision()
