"""What must hold of a PostgreSQL database after a process was killed in the middle of its work,
checked from the tables themselves (not through the product's functions), and the moment to kill."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from tests.procsrv import PROJECT_ROOT


def libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def named(url: str, application_name: str) -> str:
    """The same database, its connections named in pg_stat_activity."""
    return (
        make_url(url)
        .update_query_dict({"application_name": application_name})
        .render_as_string(hide_password=False)
    )


def wait_for_writing_transaction(url: str, application_name: str, *, timeout: float = 30) -> float:
    """Block until a connection named `application_name` is inside a transaction that has written
    (it holds a transaction id) and has not committed: the moment to kill its process so that the
    database must roll a change back. Returns the seconds waited."""
    started = time.monotonic()
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        while True:
            found = conn.execute(
                "select count(*) from pg_stat_activity"
                " where application_name = %s and backend_xid is not null",
                (application_name,),
            ).fetchone()[0]
            if found:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise AssertionError(f"{application_name} never wrote within {timeout} s")
            time.sleep(0.002)


def query(url: str, sql: str, *params) -> list[tuple]:
    with psycopg.connect(libpq(url)) as conn:
        return conn.execute(sql, params).fetchall()


def projection_problems(url: str) -> list[str]:
    """The policy projection against the rows it projects: an active grant without its `p` line or
    a `p` line without its active grant; an open outlet without its kind-group `g` line or a `g`
    line of no open outlet. Each is a change applied by half."""
    problems = []
    active = {str(i) for (i,) in query(url, "select id from \"grant\" where state = 'active'")}
    lines = query(url, "select source_id from policy_line where ptype = 'p' and source = 'grant'")
    projected = [i for (i,) in lines]
    if len(projected) != len(set(projected)):
        problems.append("a grant has two p lines")
    if missing := active - set(projected):
        problems.append(f"{len(missing)} active grants have no policy line, e.g. {sorted(missing)[:3]}")
    if stray := set(projected) - active:
        problems.append(f"{len(stray)} policy lines have no active grant, e.g. {sorted(stray)[:3]}")
    open_outlets = {i for (i,) in query(url, "select id from outlet where status = 'open'")}
    groups = [i for (i,) in query(url, "select source_id from policy_line where source = 'outlet'")]
    if missing := open_outlets - set(groups):
        problems.append(f"{len(missing)} open outlets have no group line, e.g. {sorted(missing)[:3]}")
    if stray := set(groups) - open_outlets:
        problems.append(f"{len(stray)} group lines have no open outlet, e.g. {sorted(stray)[:3]}")
    return problems


def unaudited(url: str, request_ids: list[str]) -> set[str]:
    """Of these request ids, those no audit event carries."""
    found = query(url, "select distinct request_id from audit_event where request_id = any(%s)", request_ids)
    return set(request_ids) - {r for (r,) in found}


def audit_verify(url: str, key_file: Path) -> str:
    """`ssc audit verify` as an operator runs it after an incident: its summary; fails on any break."""
    env = {**os.environ, "SSC_DATABASE_URL": url, "SSC_KEY_FILE": str(key_file)}
    done = subprocess.run(
        [str(Path(sys.executable).with_name("ssc")), "audit", "verify", "--jobs", "1"],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip().splitlines()[-1]
