"""`ssc idempotency purge`, run as a real process: the retention setting by default, or an age given."""

from __future__ import annotations

import os
from datetime import timedelta

from app.ops.tenants.apply import apply_tenant_files
from tests.cli.commands import ssc
from tests.idempotency_records import HOUR, OUTLETS, add_records, remaining


async def test_purge_prints_the_count_and_keeps_records_within_the_retention(
    db_url, sessions, tenants_dir, tmp_path
):
    await apply_tenant_files(sessions, tenants_dir)
    ages: dict[tuple[str, str], timedelta] = {
        (OUTLETS[0], "key-a-week"): 170 * HOUR,
        (OUTLETS[1], "key-4-days"): 96 * HOUR,
        (OUTLETS[1], "key-2-days"): 48 * HOUR,
        (OUTLETS[2], "key-an-hour"): HOUR,
    }
    await add_records(sessions, ages)
    env = {**os.environ, "SSC_DATABASE_URL": db_url, "SSC_KEY_FILE": str(tmp_path / "keys.env")}

    by_default = ssc(env, "idempotency", "purge")  # SSC_IDEMPOTENCY_RETENTION_HOURS: 72
    assert by_default.returncode == 0, by_default.stderr
    assert by_default.stdout.startswith("purged 2 idempotency records older than ")
    assert "(72 h)" in by_default.stdout
    assert await remaining(sessions) == {(OUTLETS[1], "key-2-days"), (OUTLETS[2], "key-an-hour")}

    given = ssc(env, "idempotency", "purge", "--older-than-hours", "24")
    assert given.returncode == 0 and given.stdout.startswith("purged 1 idempotency records"), given
    assert await remaining(sessions) == {(OUTLETS[2], "key-an-hour")}

    configured = ssc({**env, "SSC_IDEMPOTENCY_RETENTION_HOURS": "1000"}, "idempotency", "purge")
    assert configured.stdout.startswith("purged 0 ") and "(1000 h)" in configured.stdout

    for hours in ("0", "8761"):
        refused = ssc(env, "idempotency", "purge", "--older-than-hours", hours)
        assert refused.returncode == 2 and "older-than-hours" in refused.stderr
    assert await remaining(sessions) == {(OUTLETS[2], "key-an-hour")}
