"""Exports of the audit trail that an inspector can check on their own machine.

JSONL (`ssc audit export --format jsonl`): a header line, one line per event with every field its
hash covers (so `ssc audit verify --file` recomputes each link without a database), and a trailer
holding two checkpoints the platform signs at the end of the export: the `seal`, over the last
exported event of each chain (nothing may be cut from the end), and the `starts`, over the link each
chain's first exported event names (nothing may be cut from the beginning of a time range).
A `.gz` output is gzip-compressed.
"""

from __future__ import annotations

import contextlib
import gzip
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import orjson

from app.domain.audit_chain import event_time_text
from app.ops.compliance.checkpoints import Checkpoint, Head, Signer
from app.ops.compliance.events import EVENT_HEADERS, event_cells
from app.ops.compliance.tables import write_csv, write_xlsx
from app.store.audit_read import event_rows
from app.store.db import make_sync_engine

EXPORT_FORMAT = "ssc-audit-export/1"
GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class Exported:
    events: int
    tenants: int
    path: Path


def jsonl_event(event: dict) -> bytes:
    """One event as an export line: its stored fields, `at` as hashed, `detail` as the JSON it is."""
    line = {
        "tenant": event["tenant"],
        "seq": event["seq"],
        "prev_hash": event["prev_hash"],
        "hash": event["hash"],
        "at": event_time_text(event["at"]),
        "actor": event["actor"],
        "credential": event["credential"],
        "action": event["action"],
        "target_type": event["target_type"],
        "target_id": event["target_id"],
        "decision": event["decision"],
        "reason": event["reason"],
        "detail": orjson.Fragment(event["detail"]),
        "request_id": event["request_id"],
    }
    return orjson.dumps(line) + b"\n"


@contextlib.contextmanager
def writer(path: Path) -> Iterator[IO[bytes]]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") if path.suffix == ".gz" else path.open("wb") as fh:
        yield fh


@contextlib.contextmanager
def open_export(path: Path) -> Iterator[Iterator[bytes]]:
    """The lines of an export, compressed or not."""
    with path.open("rb") as probe:
        compressed = probe.read(2) == GZIP_MAGIC
    with gzip.open(path, "rb") if compressed else path.open("rb") as fh:
        yield (line for line in fh if line.strip())


@dataclass
class Sealed:
    """What `write_sealed` wrote: per chain, the link its first event names and its last event, and
    the seal signed over those last events."""

    events: int = 0
    firsts: dict[str, Head] = field(default_factory=dict)
    lasts: dict[str, Head] = field(default_factory=dict)
    seal: Checkpoint | None = None


def write_sealed(
    out: IO[bytes],
    header: dict,
    batches: Iterable[list[dict]],
    signer: Signer,
    kind: str,
    progress: Callable[[int], None] | None = None,
) -> Sealed:
    """Write the header, the events and a trailer signing where each chain begins and ends (the
    layout `verify_file` reads), for an export and for an archive alike."""
    written = Sealed()
    firsts, lasts = written.firsts, written.lasts
    out.write(orjson.dumps({"format": EXPORT_FORMAT, **header}) + b"\n")
    for batch in batches:
        for event in batch:
            tenant = event["tenant"]
            if tenant not in firsts:
                firsts[tenant] = Head(tenant, event["seq"] - 1, event["prev_hash"], "")
            lasts[tenant] = Head(tenant, event["seq"], event["hash"], event_time_text(event["at"]))
            out.write(jsonl_event(event))
        written.events += len(batch)
        if progress is not None:
            progress(len(batch))
    now = datetime.now(UTC)
    written.seal = signer.sign(lasts.values(), now, kind)
    starts = signer.sign(firsts.values(), now, kind)
    out.write(orjson.dumps({"checkpoint": written.seal.document(), "starts": starts.document()}) + b"\n")
    return written


def export_jsonl(
    url: str,
    output: Path,
    signer: Signer,
    *,
    under: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> Exported:
    """Write the events of the chains of `under` between `since` and `until` to `output`, sealed."""
    engine = make_sync_engine(url)
    try:
        with engine.connect() as connection, writer(output) as out:
            header = {
                "exported_at": event_time_text(datetime.now(UTC)),
                "tenant": under,
                "from": event_time_text(since) if since else None,
                "to": event_time_text(until) if until else None,
            }
            batches = event_rows(connection, under, since, until)
            written = write_sealed(out, header, batches, signer, "export", progress)
    finally:
        engine.dispose()
    return Exported(written.events, len(written.lasts), output)


def export_table(
    url: str,
    output: Path,
    format: str,
    *,
    under: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """The same events as a table people open (CSV or XLSX, Chinese headers, Beijing time); it
    cannot be re-verified (use JSONL for that). Returns the number of events."""
    engine = make_sync_engine(url)
    try:
        with engine.connect() as connection:

            def rows() -> Iterator[list[str]]:
                for batch in event_rows(connection, under, since, until):
                    yield from (event_cells(e) for e in batch)
                    if progress is not None:
                        progress(len(batch))

            output.parent.mkdir(parents=True, exist_ok=True)
            if format == "csv":
                return write_csv(output, EVENT_HEADERS, rows())
            return write_xlsx(output, f"审计记录 {under or ''}".strip(), EVENT_HEADERS, rows())
    finally:
        engine.dispose()
