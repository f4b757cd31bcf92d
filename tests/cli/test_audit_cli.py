"""`ssc audit` as an operator and an inspector use it: verify the database (exit 0), change one
column of one row with the sqlite3 tool (exit 1, naming the tenant and the event), sign a checkpoint,
export the trail and verify the file with only the public key."""

from __future__ import annotations

import csv
import io
import shutil
import sqlite3
import subprocess
import zipfile

import orjson
import pytest

from tests.cli.commands import ssc


@pytest.fixture
def busy(env):
    """The database `make serve` leaves after some use: tenants, a person, a partner's grant and key."""
    for args in (
        ("migrate",),
        ("tenants", "apply", "tenants/"),
        ("tokens", "create", "--tenant", "cn/440000/440100", "--role", "city_admin"),
        ("demo", "partner", "--outlet", "gz-th-pharm-dasenlin"),
    ):
        done = ssc(env, *args)
        assert done.returncode == 0, done.stderr
    return env


@pytest.fixture
def migrated(env):
    """An empty database at the newest schema: enough for the refusals, which happen before any work."""
    done = ssc(env, "migrate")
    assert done.returncode == 0, done.stderr
    return env


def edit_one_column(db_url: str, tenant: str, seq: int) -> None:
    """As an operator would with the sqlite3 tool (Python's module where the tool is missing)."""
    path = db_url.removeprefix("sqlite:///")
    statement = f"update audit_event set target_id = 'x' where tenant = '{tenant}' and seq = {seq};"
    if shutil.which("sqlite3"):
        subprocess.run(["sqlite3", path, statement], check=True, timeout=30)
    else:
        with sqlite3.connect(path) as connection:
            connection.execute(statement)


def test_verify_passes_then_names_the_edited_event(busy, db_url):
    done = ssc(busy, "audit", "verify")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("OK: ") and "events/s" in done.stdout
    assert "no checkpoint has been signed yet" in done.stderr
    if not db_url.startswith("sqlite"):
        return  # the sqlite3 tool edits SQLite files; PostgreSQL's trigger is tested in tests/store
    edit_one_column(db_url, "cn/440000/440100", 2)
    broken = ssc(busy, "audit", "verify")
    assert broken.returncode == 1
    assert "BROKEN cn/440000/440100 at event 2: EDITED" in broken.stdout
    assert broken.stdout.splitlines()[-1].startswith("FAILED: ")
    # Only the subtree asked about is walked: Shenzhen's chains are whole.
    assert ssc(busy, "audit", "verify", "--tenant", "cn/440000/440300").returncode == 0
    # Each run is kept for the console's auditors, with its first finding.
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as connection:
        runs = connection.execute(
            "select scope, ok, breaks, first_finding, events > 0 from audit_verification order by id"
        ).fetchall()
    assert runs == [
        ("cn", 1, 0, None, 1),
        ("cn", 0, 1, "cn/440000/440100 at event 2: EDITED", 1),
        ("cn/440000/440300", 1, 0, None, 1),
    ]


def test_checkpoint_export_and_offline_verification(busy, tmp_path):
    signed = ssc(busy, "audit", "checkpoint")
    assert signed.returncode == 0, signed.stderr
    checkpoint = orjson.loads(signed.stdout)
    assert checkpoint["format"] == "ssc-audit-checkpoint/1" and checkpoint["signature"]
    assert {"tenant", "seq", "hash", "at"} <= set(checkpoint["heads"][0])
    (tmp_path / "checkpoint.json").write_text(signed.stdout)
    key = ssc(busy, "audit", "public-key")
    assert key.stdout.startswith("-----BEGIN PUBLIC KEY-----") and checkpoint["key"] in key.stderr
    (tmp_path / "ssc.pem").write_text(key.stdout)
    ok = ssc(busy, "audit", "verify", "--anchors", str(tmp_path / "checkpoint.json"))
    assert ok.returncode == 0 and "signed heads checked" in ok.stdout
    exported = ssc(
        busy, "audit", "export", "--tenant", "cn/440000", "--output", str(tmp_path / "gd.jsonl.gz")
    )
    assert exported.returncode == 0, exported.stderr
    # The inspector's machine: no database, only the file and the public key.
    inspector = {**busy, "SSC_DATABASE_URL": "sqlite:////nonexistent/none.db"}
    offline = ssc(
        inspector,
        "audit",
        "verify",
        "--file",
        str(tmp_path / "gd.jsonl.gz"),
        "--public-key",
        str(tmp_path / "ssc.pem"),
    )
    assert offline.returncode == 0, offline.stdout + offline.stderr
    assert offline.stdout.startswith("OK: ")


def test_checkpoints_signed_before_a_signing_key_rotation_still_verify(busy, tmp_path):
    before = ssc(busy, "audit", "checkpoint")
    assert before.returncode == 0, before.stderr
    (tmp_path / "before.json").write_text(before.stdout)
    (tmp_path / "retired.pem").write_text(ssc(busy, "audit", "public-key").stdout)
    new_key = ssc(busy, "key-rotation", "new-key").stdout.strip()
    rotated = {**busy, "SSC_AUDIT_SIGNING_KEY": new_key}
    assert ssc(rotated, "audit", "checkpoint").returncode == 0
    anchored = ("audit", "verify", "--anchors", str(tmp_path / "before.json"))
    # The new key alone does not vouch for what the retired one signed ...
    refused = ssc(rotated, *anchored)
    assert refused.returncode == 1 and "not by a trusted one" in refused.stdout
    # ... the retired public key, kept beside it, does; so does one file holding both keys.
    kept = {**rotated, "SSC_AUDIT_PREVIOUS_PUBLIC_KEYS": str(tmp_path / "retired.pem")}
    assert ssc(kept, *anchored).returncode == 0
    both = tmp_path / "both.pem"
    both.write_text((tmp_path / "retired.pem").read_text() + ssc(rotated, "audit", "public-key").stdout)
    verified = ssc(rotated, *anchored, "--public-key", str(both))
    assert verified.returncode == 0 and "signed heads checked" in verified.stdout


def test_tables_people_open(busy, tmp_path):
    """The trail and the permission matrix as CSV and XLSX, with Chinese headers."""
    trail = tmp_path / "trail.csv"
    done = ssc(busy, "audit", "export", "--tenant", "cn/440000", "--format", "csv", "--output", str(trail))
    assert done.returncode == 0, done.stderr
    rows = list(csv.reader(io.StringIO(trail.read_text(encoding="utf-8-sig"))))
    assert rows[0][:4] == ["编号", "部门", "链内序号", "时间（北京时间）"] and len(rows) > 2
    assert f"{len(rows) - 1:,} events written" in done.stdout
    matrix = tmp_path / "matrix.csv"
    done = ssc(busy, "report", "matrix", "--tenant", "cn/440000/440100", "--output", str(matrix))
    assert done.returncode == 0, done.stderr
    rows = list(csv.reader(io.StringIO(matrix.read_text(encoding="utf-8-sig"))))
    assert rows[0][:3] == ["网点编码", "网点名称", "网点类型"]
    hospital = next(r for r in rows if r[0] == "gz-th-hosp-tianhe")
    assert hospital[4] == "法定：定点医院首次就医启用"
    for command in (
        ("audit", "export", "--tenant", "cn/440000"),
        ("report", "matrix", "--tenant", "cn/440000"),
    ):
        book = tmp_path / "book.xlsx"
        done = ssc(busy, *command, "--format", "xlsx", "--output", str(book))
        assert done.returncode == 0, done.stderr
        assert zipfile.is_zipfile(book)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("audit", "export", "--tenant", "cn/44", "--output", "x.jsonl"), "--tenant"),
        (("audit", "export", "--tenant", "cn", "--output", "x.jsonl", "--from", "yesterday"), "--from"),
        (
            (
                "audit",
                "export",
                "--tenant",
                "cn",
                "--output",
                "x.jsonl",
                "--from",
                "2026-03-03",
                "--to",
                "2026-03-01",
            ),
            "--from must be before --to",
        ),
        (("audit", "verify", "--file", "no-such-file.jsonl"), "is not a file"),
        (("audit", "archive", "--before", "2026-11-30"), "only events before"),
        (
            ("audit", "export", "--tenant", "cn", "--output", "x", "--format", "pdf"),
            "one of jsonl, csv, xlsx",
        ),
        (
            ("report", "matrix", "--tenant", "cn/440000", "--output", "x", "--at", "2001-01-01"),
            "--at is before",
        ),
        (
            ("report", "matrix", "--tenant", "cn/440000", "--output", "x", "--format", "pdf"),
            "one of csv, xlsx",
        ),
        (("audit", "archive", "--before", "yesterday"), "--before: 'yesterday' is not a date"),
        (("audit", "verify", "--anchors", "no-such-file.json"), "no-such-file.json"),
    ],
)
def test_bad_arguments_are_refused_clearly(migrated, args, message):
    done = ssc(migrated, *args)
    assert done.returncode != 0 and message in done.stderr and "Traceback" not in done.stderr
