"""SQLite connections bound the WAL file: after a burst, the WAL is cut back when it starts over."""

from __future__ import annotations

import os

from sqlalchemy import text

from app.store import db


def test_the_wal_is_cut_back_to_the_limit_once_it_starts_over(tmp_path, monkeypatch):
    limit = 256 * 1024
    monkeypatch.setattr(db, "SQLITE_WAL_SIZE_LIMIT", limit)
    engine = db.make_sync_engine(f"sqlite:///{tmp_path / 'wal.db'}")
    wal = tmp_path / "wal.db-wal"
    try:
        with engine.begin() as connection:
            connection.execute(text("create table blob (b blob)"))
            for _ in range(200):  # ~4 MB in one burst
                connection.execute(text("insert into blob values (randomblob(20000))"))
        burst = os.path.getsize(wal)
        with engine.begin() as connection:
            connection.execute(text("pragma wal_checkpoint(passive)"))
        with engine.begin() as connection:  # the next write starts the checkpointed WAL over
            connection.execute(text("insert into blob values (x'00')"))
        assert burst > 10 * limit
        assert os.path.getsize(wal) <= limit
    finally:
        engine.dispose()
