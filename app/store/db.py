"""Engines and session factories for SQLite (embedded default) and PostgreSQL (production)."""

from __future__ import annotations

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import SessionTransaction, SessionTransactionOrigin
from sqlmodel import Session
from sqlmodel.ext.asyncio.session import AsyncSession

SQLITE_BUSY_TIMEOUT_MS = 30_000
# A WAL file keeps the size of its largest burst (a card import writes ~0.5 GB) until the last
# connection closes; past this size it is cut back whenever the WAL starts over after a checkpoint.
SQLITE_WAL_SIZE_LIMIT = 64 * 1024 * 1024


def _driver_url(url: str, *, asynchronous: bool) -> str:
    """Map a plain `sqlite:` / `postgresql:` URL onto the drivers we ship."""
    u = make_url(url)
    backend = u.get_backend_name()
    if backend == "sqlite":
        return u.set(drivername="sqlite+aiosqlite" if asynchronous else "sqlite").render_as_string(
            hide_password=False
        )
    if backend in ("postgresql", "postgres"):
        return u.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    raise ValueError(f"unsupported database URL scheme {u.drivername!r}: use sqlite:/// or postgresql://")


def driver_target(url: str) -> tuple[str, str]:
    """(dialect, address): where the bare driver connects for `url`, a file path or a libpq URL
    (app/store/audit_scan.py reads without SQLAlchemy)."""
    u = make_url(_driver_url(url, asynchronous=False))
    if u.get_backend_name() == "sqlite":
        return "sqlite", u.database or ":memory:"
    return "postgresql", u.set(drivername="postgresql").render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets readers run beside the single writer; foreign keys are off by default in SQLite.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA journal_size_limit={SQLITE_WAL_SIZE_LIMIT}")
    cursor.close()


def _prepare_sqlite_file(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:":
        from pathlib import Path

        Path(database).parent.mkdir(parents=True, exist_ok=True)


def make_sync_engine(url: str, *, echo: bool = False) -> Engine:
    if is_sqlite(url):
        _prepare_sqlite_file(url)
    engine = create_engine(_driver_url(url, asynchronous=False), echo=echo)
    if is_sqlite(url):
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


# A worker's PostgreSQL connections for its use cases (partners' card reads have their own:
# app.store.point_reads): all kept open, none in overflow, which SQLAlchemy closes when given back to
# a full pool — under load that set up and tore down a connection for every request beyond the pool.
# A use case waits for a free one instead (UNAVAILABLE after the pool's timeout).
PG_POOL_SIZE = 20
PG_POOL_OVERFLOW = 0


def make_async_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    if is_sqlite(url):
        _prepare_sqlite_file(url)
    pool = {} if is_sqlite(url) else {"pool_size": PG_POOL_SIZE, "max_overflow": PG_POOL_OVERFLOW}
    engine = create_async_engine(_driver_url(url, asynchronous=True), echo=echo, **pool)
    if is_sqlite(url):
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


class WriteSession(Session):
    """The synchronous session behind every AsyncSession of the app (see `_writer_first`)."""


@event.listens_for(WriteSession, "after_begin")
def _writer_first(session: Session, transaction: SessionTransaction, connection: Connection) -> None:
    """On SQLite, an explicit `session.begin()` (a use case's write transaction) becomes the
    database's writer before its first statement: BEGIN IMMEDIATE.

    Python's sqlite3 opens a transaction only at the first INSERT/UPDATE/DELETE, so everything a use
    case reads before writing (the version it compares with `expectedVersion`, a grant's state, a
    chain head) would be read outside any transaction, and two workers could both decide on the same
    old row and both commit. As the writer, the transaction reads what the next writer will see.
    Sessions that only read (no explicit begin) keep WAL's concurrent readers. PostgreSQL needs
    nothing here: use cases lock the rows they check (FOR UPDATE) and versioned rows are updated
    compare-and-set (`version_id_col`, app/store/tables).
    """
    if connection.dialect.name != "sqlite" or transaction.origin is not SessionTransactionOrigin.BEGIN:
        return
    if not connection.connection.driver_connection.in_transaction:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # expire_on_commit=False: use cases return the rows they changed after committing.
    return async_sessionmaker(
        engine, class_=AsyncSession, sync_session_class=WriteSession, expire_on_commit=False
    )


async def take_write_lock(session: AsyncSession) -> None:
    """On SQLite, make the session's transaction the database's writer now, before it reads.

    Python's sqlite3 only opens a transaction at the first INSERT/UPDATE/DELETE, so reads before it
    run outside any transaction: two writers could both read the same audit chain head or failure
    counter and then collide. PostgreSQL callers use row locks or advisory locks instead.
    """
    if session.bind.dialect.name != "sqlite":
        return
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    if not raw.driver_connection.in_transaction:
        await connection.exec_driver_sql("BEGIN IMMEDIATE")
