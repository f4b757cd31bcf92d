"""Whether an exception means the database could not be reached or used just now (the server is down,
a connection was cut, the pool is exhausted), as opposed to a bug: the caller is then told
UNAVAILABLE and to retry, and the worker heals on its own (SQLAlchemy discards a broken connection
and opens a new one at the next checkout)."""

from __future__ import annotations

import sqlite3

import psycopg
from sqlalchemy import exc

# PostgreSQL's driver raises OperationalError for what happens to the connection (refused, cut, the
# server shutting down); a mistake in SQL is a ProgrammingError, a bug. SQLite's OperationalError also
# covers mistakes ("no such table"): only its few outage messages count.
_SQLITE_OUTAGES = ("database is locked", "unable to open database file", "disk i/o error")
# The pool had no connection free in time; the server or the network.
_ALWAYS = (exc.TimeoutError, psycopg.OperationalError, psycopg.InterfaceError, ConnectionError)


def _outage(error: BaseException) -> bool:
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, _ALWAYS):
        return True
    return isinstance(error, sqlite3.OperationalError) and str(error).lower().startswith(_SQLITE_OUTAGES)


def database_unavailable(error: BaseException | None) -> bool:
    """Whether `error`, or an exception it was raised from, is one of the database's outages."""
    seen = 0
    while error is not None and seen < 10:  # a chain of causes, bounded
        if _outage(error):
            return True
        error, seen = error.__cause__ or error.__context__, seen + 1
    return False
