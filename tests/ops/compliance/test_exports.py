"""An exported trail verifies on its own (no database), and whatever is changed in the file is found:
a field, a line removed from the middle, the end or the beginning, the seal itself."""

from __future__ import annotations

import gzip
import secrets
from datetime import UTC, datetime, timedelta

import orjson

from app.ops.compliance.checkpoints import Signer, sign_heads
from app.ops.compliance.exports import export_jsonl
from app.ops.compliance.verify import verify_file
from tests.ops.compliance.test_verify import GZ, SIGNER, SZ, TH, write_events


def lines_of(path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def rewrite(path, lines) -> None:
    path.write_bytes(b"".join(lines))


def event_index(lines, tenant: str, seq: int) -> int:
    records = (orjson.loads(line) for line in lines)
    return next(i for i, r in enumerate(records) if (r.get("tenant"), r.get("seq")) == (tenant, seq))


def check(path, **kw):
    return verify_file(path, public_keys=[SIGNER.public_key], **kw)


def breaks(found) -> list[tuple[str, int, str]]:
    return [(b.tenant, b.seq, b.problem) for b in found.breaks]


async def test_an_export_verifies_on_its_own(db_url, sessions, tmp_path):
    await write_events(sessions, 25)
    done = export_jsonl(db_url, tmp_path / "trail.jsonl", SIGNER, under="cn/440000")
    assert (done.events, done.tenants) == (75, 3)
    found = check(done.path)
    assert found.ok and found.events == 75 and found.tenants == 3 and found.notes == []
    # Compressed, the same.
    packed = export_jsonl(db_url, tmp_path / "trail.jsonl.gz", SIGNER, under=GZ)
    assert gzip.decompress(packed.path.read_bytes()).startswith(b'{"format":"ssc-audit-export/1"')
    assert check(packed.path).ok and check(packed.path).events == 50  # Guangzhou and Tianhe
    # Without the public key nothing is trusted.
    assert not verify_file(done.path).ok


async def test_a_changed_field_in_the_file_is_found(db_url, sessions, tmp_path):
    await write_events(sessions, 25)
    path = export_jsonl(db_url, tmp_path / "trail.jsonl", SIGNER).path
    lines = lines_of(path)
    i = event_index(lines, SZ, 13)
    lines[i] = lines[i].replace(b'"actor":"person:admin.', b'"actor":"person:other.')
    rewrite(path, lines)
    assert breaks(check(path)) == [(SZ, 13, "EDITED")]


async def test_lines_removed_from_the_file_are_found(db_url, sessions, tmp_path):
    await write_events(sessions, 25)
    path = export_jsonl(db_url, tmp_path / "trail.jsonl", SIGNER).path
    original = lines_of(path)
    # From the middle.
    lines = list(original)
    del lines[event_index(lines, GZ, 7)]
    rewrite(path, lines)
    assert breaks(check(path)) == [(GZ, 7, "MISSING")]
    # From the end of a chain: the seal holds its last event.
    lines = list(original)
    del lines[event_index(lines, TH, 25)]
    rewrite(path, lines)
    assert breaks(check(path)) == [(TH, 25, "TRUNCATED")]
    # The beginning of a chain: the signed starts hold its first event.
    lines = list(original)
    del lines[event_index(lines, TH, 1)]
    rewrite(path, lines)
    assert breaks(check(path)) == [(TH, 1, "MISSING")]
    # The seal itself.
    rewrite(path, original[:-1])
    found = check(path)
    assert not found.ok and "no seal" in found.problems[0]


async def test_a_seal_signed_by_another_key_is_refused(db_url, sessions, tmp_path):
    await write_events(sessions, 5)
    forger = Signer(secrets.token_bytes(32))
    path = export_jsonl(db_url, tmp_path / "trail.jsonl", forger).path
    found = check(path)
    assert not found.ok and "signed by key" in found.problems[0]


async def test_a_time_range_verifies_from_its_signed_start(db_url, sessions, tmp_path):
    await write_events(sessions, 10)
    middle = datetime.now(UTC)
    await write_events(sessions, 10)
    path = export_jsonl(db_url, tmp_path / "slice.jsonl", SIGNER, since=middle).path
    found = check(path)
    assert found.ok and found.events == 30 and "begins after the start" in found.notes[0]
    lines = lines_of(path)
    first = orjson.loads(lines[1])
    del lines[1]
    rewrite(path, lines)
    assert breaks(check(path)) == [(first["tenant"], first["seq"], "MISSING")]
    # An empty range is a valid, empty export.
    empty = export_jsonl(db_url, tmp_path / "none.jsonl", SIGNER, until=middle - timedelta(days=1)).path
    assert check(empty).ok and check(empty).events == 0


async def test_an_outside_checkpoint_is_checked_where_the_file_reaches_it(db_url, sessions, tmp_path):
    await write_events(sessions, 8)
    signed = await sign_heads(sessions, SIGNER)
    await write_events(sessions, 2)
    path = export_jsonl(db_url, tmp_path / "trail.jsonl", SIGNER).path
    assert check(path, anchors=signed).ok
    # A checkpoint that does not hold is a problem of its own, whatever the file.
    forged = Signer(secrets.token_bytes(32)).sign(signed.heads, datetime.now(UTC))
    found = check(path, anchors=forged)
    assert not found.ok and found.problems[0].startswith("the checkpoint given: ")
