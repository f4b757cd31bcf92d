import orjson
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import app.store.tables  # noqa: F401
from app.store import migrate
from app.store.db import make_sync_engine
from app.store.outlet_search import FTS_TABLE, TRIGRAM_INDEXES


def test_fresh_database_reaches_head(tmp_path):
    url = f"sqlite:///{tmp_path / 'new.db'}"
    assert migrate.current_revision(url) is None
    migrate.upgrade(url)
    assert migrate.current_revision(url) == migrate.head_revision()
    migrate.upgrade(url)  # a second run is a no-op, not an error
    assert migrate.current_revision(url) == migrate.head_revision()


def declared(item, name, kind, reflected, compare_to) -> bool:
    """Leave aside what migration 0011 adds beyond the declared tables: the outlet search index."""
    if kind == "table" and reflected and name.startswith(FTS_TABLE):
        return False
    return not (kind == "index" and reflected and name in TRIGRAM_INDEXES)


def test_migrations_match_the_tables(db_url):
    """The migrations build exactly the schema the code declares, on the database under test."""
    engine = make_sync_engine(db_url)
    with engine.connect() as connection:
        options = {"compare_type": True, "include_object": declared}
        context = MigrationContext.configure(connection, opts=options)
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


def test_policy_history_is_dated_from_the_change_log(tmp_path):
    """Migration 0006 dates the lines already there by their last `add` in the log, and turns every
    line added and removed since into a `policy_line_ended` row."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    migrate.upgrade(url, "0005")
    engine = make_sync_engine(url)
    times = [f"2026-0{m}-01 00:00:00.000000" for m in range(1, 5)]
    grant_a = ["outlet:a", "cn/440000", "password_change", "allow", "2026-01-01T00:00:00Z", "9999", "1"]
    group_b = ["outlet:b", "kind:bank_outlet", "cn/440000"]
    log = [
        ("add", "p", grant_a, times[0]),
        ("add", "g", group_b, times[1]),
        ("remove", "p", grant_a, times[2]),
    ]
    with engine.begin() as connection:
        for op, ptype, rule, at in log:
            connection.exec_driver_sql(
                "INSERT INTO policy_change (op, ptype, rule, at) VALUES (?, ?, ?, ?)",
                (op, ptype, orjson.dumps(rule).decode(), at),
            )
        connection.exec_driver_sql(
            "INSERT INTO policy_line (ptype, v0, v1, v2, source, source_id) "
            "VALUES ('g', ?, ?, ?, 'outlet', 'b')",
            tuple(group_b),
        )
    migrate.upgrade(url)
    with engine.connect() as connection:
        live = connection.exec_driver_sql("SELECT v0, added_at, added_by FROM policy_line").all()
        ended = connection.exec_driver_sql(
            "SELECT v0, v6, source, source_id, added_at, removed_at FROM policy_line_ended"
        ).all()
    engine.dispose()
    assert live == [("outlet:b", times[1], None)]
    assert ended == [("outlet:a", "1", "grant", "1", times[0], times[2])]


def test_role_history_is_read_back_from_the_audit_trail(tmp_path):
    """Migration 0008 turns every role removal in the trail into a `role_assignment_ended` row (from
    the latest assignment of that role before it) and dates each deactivation."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    migrate.upgrade(url, "0007")
    engine = make_sync_engine(url)
    times = [f"2026-0{m}-01 00:00:00.000000" for m in range(1, 6)]
    th = "cn/440000/440100/440106"
    gd, gz = "principal:gd.admin", "principal:gz.admin"
    events = [
        (times[0], gd, "principal.create", "gz.op", {"role": "operator", "tenant": th}),
        (times[1], gz, "principal.assign_role", "gz.op", {"role": "approver", "tenant": th}),
        (times[2], gd, "principal.remove_role", "gz.op", {"role": "approver", "tenant": th}),
        (times[3], gd, "principal.remove_role", "gz.op", {"role": "auditor", "tenant": th}),
        (times[4], gd, "principal.deactivate", "sz.op", {"reason": "left"}),
    ]
    with engine.begin() as connection:
        for name, active in (("gz.op", True), ("sz.op", False)):
            connection.exec_driver_sql(
                "INSERT INTO principal (name, display_name, active, version, created_at) "
                "VALUES (?, ?, ?, 1, ?)",
                (name, name, active, "2025-12-01 00:00:00.000000"),
            )
        for seq, (at, actor, action, target, detail) in enumerate(events, start=1):
            connection.exec_driver_sql(
                "INSERT INTO audit_event (tenant, seq, prev_hash, hash, at, actor, action, target_type, "
                "target_id, detail) VALUES ('cn/440000', ?, '', '', ?, ?, ?, 'principal', ?, ?)",
                (seq, at, actor, action, target, orjson.dumps(detail).decode()),
            )
    migrate.upgrade(url)
    with engine.connect() as connection:
        ended = connection.exec_driver_sql(
            "SELECT role, tenant, added_at, added_by, removed_at, removed_by "
            "FROM role_assignment_ended ORDER BY id"
        ).all()
        deactivated = connection.exec_driver_sql(
            "SELECT name, deactivated_at FROM principal ORDER BY name"
        ).all()
    engine.dispose()
    assert ended == [
        ("approver", th, times[1], gz, times[2], gd),
        # Never seen assigned in the trail: from the person's creation, by someone unknown.
        ("auditor", th, "2025-12-01 00:00:00.000000", None, times[3], gd),
    ]
    assert deactivated == [("gz.op", None), ("sz.op", times[4])]
