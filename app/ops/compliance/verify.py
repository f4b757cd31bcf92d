"""`ssc audit verify`: walk the audit chains of the database, or of an exported file, and say where
each one first breaks.

On the database, the chains are checked against a signed checkpoint (the latest kept one, or one
given with `--anchors`), and continue across archive boundaries from the archive's signed checkpoint.
On a file (`--file`, no database needed), against the seal the export signed over its own last events
and, if given, an outside checkpoint. Memory stays flat: events stream in batches, and what is kept
is a few values per tenant. The database is read in the order the events were written, in parts by
`jobs` processes for a large trail; a chain that does not come whole that way is walked again in
sequence order, which names its first break (app/domain/audit_chain.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Connection

from app.domain.audit_chain import (
    Break,
    ChainWalk,
    Link,
    Row,
    Sighting,
    canonical_json,
    hashed_content,
    stitch,
)
from app.domain.regions import dom_in
from app.ops.compliance.checkpoints import Checkpoint, CheckpointError, loaded, stored_checkpoint
from app.ops.compliance.exports import EXPORT_FORMAT, open_export
from app.store.audit_read import chain_rows, content_of, id_span
from app.store.audit_scan import Target, sight, sight_in_process
from app.store.db import driver_target, make_sync_engine
from app.store.tables import AuditArchive, AuditCheckpoint

Progress = Callable[[int], None]


@dataclass
class Verification:
    """What a walk found. `problems` are failures that are not a chain's break (a checkpoint whose
    signature does not hold, an archive boundary without its signature)."""

    events: int = 0
    tenants: int = 0
    seconds: float = 0.0
    breaks: list[Break] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    checkpoint: Checkpoint | None = None
    # Per tenant, the events after the head its checkpoint signed: not yet covered by a signature.
    unsigned: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.breaks and not self.problems

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def _checked(
    checkpoint: Checkpoint, public_keys: Sequence[Ed25519PublicKey] | None, what: str, found: Verification
) -> bool:
    if public_keys is None:
        found.problems.append(f"{what}: no public key to check its signature with (--public-key)")
        return False
    try:
        checkpoint.check(public_keys)
    except CheckpointError as err:
        found.problems.append(f"{what}: {err}")
        return False
    return True


def _archive_starts(
    connection: Connection, public_keys: Sequence[Ed25519PublicKey] | None, found: Verification
) -> list[Link]:
    """Where archived chains go on: the newest boundary of each tenant, if its checkpoint is signed."""
    archive, checkpoints = AuditArchive.__table__, AuditCheckpoint.__table__
    rows = connection.execute(archive.select().order_by(archive.c.tenant, archive.c.seq.desc())).all()
    starts: dict[str, Link] = {}
    for row in rows:
        if row.tenant in starts:
            continue
        signed = loaded(
            connection.execute(checkpoints.select().where(checkpoints.c.id == row.checkpoint_id)).one()
        )
        head = next((h for h in signed.heads if h.tenant == row.tenant), None)
        what = f"the archive boundary of {row.tenant} at event {row.seq}"
        if not _checked(signed, public_keys, what, found):
            continue
        if head is None or (head.seq, head.hash) != (row.seq, row.hash):
            found.problems.append(f"{what} is not the one its checkpoint signed")
            continue
        starts[row.tenant] = Link(row.tenant, row.seq, row.hash)
    return list(starts.values())


def _finish(walk: ChainWalk, found: Verification, started: float, *, complete: bool = True) -> Verification:
    found.breaks = walk.finish(complete=complete)
    found.events, found.tenants = walk.events, len(walk.heads)
    found.seconds = time.perf_counter() - started
    anchors = walk.anchors
    for tenant, (last, _) in walk.heads.items():
        signed = anchors[tenant].seq if tenant in anchors else 0
        start = walk.starts[tenant].seq if tenant in walk.starts else 0
        if last > max(signed, start):
            found.unsigned[tenant] = last - max(signed, start)
    return found


# Below this many events a trail is read by one process: starting others would cost more.
_EVENTS_PER_JOB = 250_000


def _parts(span: tuple[int, int], jobs: int) -> list[tuple[int, int]]:
    """The (low, high] id ranges the table is read in: one, or a few per job so that the progress
    bar moves and a slow part does not hold the others up."""
    low, high = span
    count = 1 if jobs <= 1 else min(jobs * 4, max(1, (high - low) // _EVENTS_PER_JOB))
    step = -(-(high - low) // count) if high > low else 1
    return [(start, min(start + step, high)) for start in range(low, max(high, low + 1), step)]


def _sight_in_parallel(
    target: Target,
    under: str | None,
    parts: list[tuple[int, int]],
    anchors: list[Link],
    jobs: int,
    progress: Progress | None,
) -> list[Sighting]:
    """The parts read by up to `jobs` processes at once (each with its own connection and one batch
    in memory), their sightings in the parts' order for `stitch`."""
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(sight_in_process, target, under, part, anchors) for part in parts]
        for future in as_completed(futures):
            if progress is not None:
                progress(future.result().events)
        return [future.result() for future in futures]


def verify_database(
    url: str,
    *,
    under: str | None = None,
    anchors: Checkpoint | None = None,
    checkpoint_id: int | None = None,
    public_keys: Sequence[Ed25519PublicKey] | None = None,
    progress: Progress | None = None,
    jobs: int = 1,
) -> Verification:
    """Walk the chains of `under` (every chain: None) in the database at `url`, with up to `jobs`
    processes reading parts of the table at once (a large trail only)."""
    found = Verification()
    engine = make_sync_engine(url)
    try:
        with engine.connect() as connection:
            checkpoint = anchors or stored_checkpoint(connection, checkpoint_id)
            if checkpoint_id is not None and checkpoint is None:
                found.problems.append(f"there is no checkpoint {checkpoint_id}")
            links: list[Link] = []
            if checkpoint is not None and _checked(checkpoint, public_keys, "the checkpoint", found):
                found.checkpoint = checkpoint
                links = [link for link in checkpoint.links() if (under is None or dom_in(link.tenant, under))]
            elif checkpoint is None:
                found.notes.append("no checkpoint has been signed yet: `ssc audit checkpoint` signs one")
            starts = [
                s
                for s in _archive_starts(connection, public_keys, found)
                if (under is None or dom_in(s.tenant, under))
            ]
            started = time.perf_counter()
            parts = _parts(id_span(connection), jobs)
            target = Target(*driver_target(url))
            if len(parts) == 1:
                sightings = [sight(target, under, parts[0], links, progress)]
            else:
                sightings = _sight_in_parallel(target, under, parts, links, jobs, progress)
            seen = stitch(sightings, starts)
            walk = ChainWalk(anchors=links, starts=starts, recheck=partial(content_of, connection))
            seen.hand_over(walk)
            for batch in chain_rows(connection, under, tenants=seen.doubtful):
                walk.feed(batch)
                del batch
            return _finish(walk, found, started)
    finally:
        engine.dispose()


def _file_rows(lines: Iterator[bytes], trailer: list[dict], batch: int = 10_000) -> Iterator[list[Row]]:
    rows: list[Row] = []
    for number, line in enumerate(lines, start=2):
        record = orjson.loads(line)
        if "checkpoint" in record:
            trailer.append(record)
            continue
        try:
            content = hashed_content(record, canonical_json(record["detail"]))
            rows.append(
                (record["tenant"], record["seq"], record["prev_hash"], record["hash"], content, number)
            )
        except (KeyError, TypeError) as err:
            raise CheckpointError(f"line {number} is not an audit event (no {err})") from None
        if len(rows) >= batch:
            yield rows
            rows = []
    if rows:
        yield rows


def _against_seal(
    walk: ChainWalk, trailer: dict, public_keys: Sequence[Ed25519PublicKey] | None, found: Verification
) -> None:
    """The export's own signatures: each chain must end at the sealed head and begin at the signed
    start, and no chain may be there that the seal does not know."""
    try:
        seal = Checkpoint.from_document(trailer["checkpoint"])
        starts = Checkpoint.from_document(trailer.get("starts"))
    except CheckpointError as err:
        found.problems.append(f"the export's seal: {err}")
        return
    found.checkpoint = seal
    if not (
        _checked(seal, public_keys, "the export's seal", found)
        and _checked(starts, public_keys, "the export's starts", found)
    ):
        return
    broken = {b.tenant for b in found.breaks}
    for head in seal.heads:
        last = walk.heads.get(head.tenant)
        if head.tenant not in broken and last != (head.seq, head.hash):
            at = 1 if last is None else min(last[0] + 1, head.seq)
            found.breaks.append(
                Break(head.tenant, at, "TRUNCATED", f"the export's seal ends this chain at event {head.seq}")
            )
    for start in starts.heads:
        first = walk.firsts.get(start.tenant)
        if start.tenant not in broken and (
            first is None or (first.seq, first.hash) != (start.seq, start.hash)
        ):
            at = start.seq + 1
            found.breaks.append(
                Break(
                    start.tenant,
                    at,
                    "MISSING",
                    f"the export's signed start has this chain begin at event {at}",
                )
            )
    sealed = {head.tenant for head in seal.heads}
    found.breaks += [
        Break(t, first.seq + 1, "INSERTED", "a chain the export's seal does not know")
        for t, first in walk.firsts.items()
        if t not in sealed and t not in broken
    ]
    found.breaks.sort(key=lambda b: b.tenant)
    found.unsigned = {}


def verify_file(
    path: Path,
    *,
    anchors: Checkpoint | None = None,
    public_keys: Sequence[Ed25519PublicKey] | None = None,
    progress: Progress | None = None,
) -> Verification:
    """Walk the chains of an export (`ssc audit export --format jsonl`), without any database: each
    link, then the export's own seal and starts, and an outside checkpoint (`anchors`) where the
    file reaches its heads."""
    found = Verification()
    started = time.perf_counter()
    with open_export(path) as lines:
        header = orjson.loads(next(lines, b"{}"))
        if header.get("format") != EXPORT_FORMAT:
            raise CheckpointError(f"{path} is not an audit export of the {EXPORT_FORMAT} format")
        outside = anchors is not None and _checked(anchors, public_keys, "the checkpoint given", found)
        walk = ChainWalk(anchors=anchors.links() if outside and anchors else [], trust_first=True)
        trailer: list[dict] = []
        for batch in _file_rows(lines, trailer):
            walk.feed(batch)
            if progress is not None:
                progress(len(batch))
    found = _finish(walk, found, started, complete=False)
    if header.get("from") is not None or any(first.seq > 0 for first in walk.firsts.values()):
        found.notes.append(
            "the export begins after the start of some chains: their first link is checked against "
            "the export's signed starts, not against the events before it"
        )
    if not trailer:
        found.problems.append("the export has no seal: it was cut short, or its last line removed")
    else:
        _against_seal(walk, trailer[-1], public_keys, found)
    return found
