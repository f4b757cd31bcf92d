"""The audit trail's hash chains (DESIGN.md §6): what an event's hash covers, and walking a chain.

Each tenant has one chain: event `seq` n holds `prev_hash` = the hash of event n-1 (64 zeros for the
first) and `hash = sha256(prev_hash + content)`, where the content is the canonical JSON (sorted
keys, no spaces, UTF-8) of the event's fields. Whoever changes, removes, reorders or inserts an event
breaks the chain at that point unless they re-hash every later event; signed checkpoints of the
chains' heads (app/ops/compliance/checkpoints.py) catch that too.

`ChainWalk` checks chains given in (tenant, seq) order and keeps the first break of each tenant. It
is the one implementation behind `ssc audit verify`, on the database and on an exported file alike.
On the database, `WrittenOrderPass` looks first at the events in the order they were written (a
scan, in parts by several processes, joined by `stitch`), and hands `ChainWalk` the chains it found
whole and the names of the others, which `ChainWalk` then walks in order itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

GENESIS_HASH = "0" * 64

# The fields an event's hash covers besides `detail` (credential only when present, so the events
# written before that column existed verify unchanged).
HASHED_FIELDS = (
    "tenant",
    "seq",
    "at",
    "actor",
    "action",
    "target_type",
    "target_id",
    "decision",
    "reason",
    "request_id",
)


def canonical_json(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def event_time_text(at: datetime) -> str:
    """An event's time as hashed: 2026-11-25T03:00:00.123456Z (UTC, always with microseconds)."""
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def hashed_content(fields: Mapping[str, Any], detail: bytes) -> bytes:
    """The bytes an event's hash covers: its fields, with `at` as `event_time_text` and `detail` as the
    canonical JSON it is stored as."""
    body = {name: fields[name] for name in HASHED_FIELDS}
    body["detail"] = orjson.Fragment(detail)
    if fields.get("credential") is not None:
        body["credential"] = fields["credential"]
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def chain_hash(prev_hash: str, content: bytes) -> str:
    return hashlib.sha256(prev_hash.encode() + content).hexdigest()


@dataclass(frozen=True)
class Link:
    """A known point of a chain: event `seq` of `tenant` has hash `hash` (a checkpoint's head)."""

    tenant: str
    seq: int
    hash: str


@dataclass(frozen=True)
class Break:
    """The first place where a tenant's chain is not what it claims to be."""

    tenant: str
    seq: int
    problem: str  # EDITED, MISSING, RELINKED, OUT_OF_ORDER, REWRITTEN, TRUNCATED
    message: str


# (tenant, seq, prev_hash, hash, content, ref): `content` is what the hash should cover, `ref` what
# `recheck` needs to look at the event again (its row id, say).
Row = tuple[str, int, str, str, bytes, Any]


class ChainWalk:
    """Checks events given in (tenant, seq) order; `breaks` holds the first break of each tenant.

    `starts` gives, per tenant, where its chain begins when not at event 1 (an archive boundary: the
    last archived event, whose hash the first remaining event must name). `anchors` are heads from
    signed checkpoints: the event at each must still have that hash, and must still be there.
    `recheck(ref)` is asked when an event's content does not match its hash, before calling it
    edited: a reader that builds the content in SQL for speed recomputes it in Python there. With
    `trust_first`, a chain without a start begins wherever its first event says (an export of a time
    range); `firsts` records those beginnings, for the caller to check against a signature.
    """

    def __init__(
        self,
        *,
        anchors: Iterable[Link] = (),
        starts: Iterable[Link] = (),
        recheck: Callable[[Any], bytes | None] | None = None,
        trust_first: bool = False,
    ) -> None:
        self.anchors = {link.tenant: link for link in anchors}
        self.starts = {link.tenant: link for link in starts}
        self.recheck = recheck
        self.trust_first = trust_first
        self.firsts: dict[str, Link] = {}
        self.breaks: dict[str, Break] = {}
        self.heads: dict[str, tuple[int, str]] = {}  # tenant -> (last seq seen, its hash)
        self.events = 0
        self._tenant: str | None = None
        self._next_seq = 1
        self._prev = GENESIS_HASH
        self._anchor: Link | None = None
        self._broken = False

    def _begin(self, tenant: str, seq: int, prev_hash: str) -> None:
        self._close()
        self._tenant, self._anchor = tenant, self.anchors.get(tenant)
        if tenant in self.heads or tenant in self.breaks:
            self._broken = False
            self._break(seq, "OUT_OF_ORDER", f"event {seq} is apart from the rest of its chain")
            return
        start = self.starts.get(tenant)
        if start is None and self.trust_first:
            start = self.firsts[tenant] = Link(tenant, seq - 1, prev_hash)
        self._broken = False
        self._next_seq, self._prev = (start.seq + 1, start.hash) if start else (1, GENESIS_HASH)
        self.heads[tenant] = (self._next_seq - 1, self._prev)

    def _break(self, seq: int, problem: str, message: str) -> None:
        assert self._tenant is not None
        self.breaks.setdefault(self._tenant, Break(self._tenant, seq, problem, message))
        self._broken = True

    def feed(self, rows: Iterable[Row]) -> None:
        sha256 = hashlib.sha256
        for tenant, seq, prev_hash, stored_hash, content, ref in rows:
            self.events += 1
            if tenant != self._tenant:
                self._begin(tenant, seq, prev_hash)
            if self._broken:
                continue
            expected = self._next_seq
            if seq != expected:
                if seq > expected:
                    missing = f"{expected}" if seq == expected + 1 else f"{expected}-{seq - 1}"
                    self._break(
                        expected, "MISSING", f"event {missing} is missing: the chain goes on at {seq}"
                    )
                else:
                    self._break(seq, "OUT_OF_ORDER", f"event {seq} comes again after event {expected - 1}")
                continue
            if sha256(prev_hash.encode() + content).hexdigest() != stored_hash and not self._rechecked(
                prev_hash, stored_hash, ref
            ):
                self._break(seq, "EDITED", f"event {seq} does not match its hash: a field was changed")
                continue
            if prev_hash != self._prev:
                self._break(
                    seq,
                    "RELINKED",
                    f"event {seq} does not follow event {seq - 1}: an event was inserted, removed or moved",
                )
                continue
            anchor = self._anchor
            if anchor is not None and seq == anchor.seq and stored_hash != anchor.hash:
                self._break(
                    seq,
                    "REWRITTEN",
                    f"event {seq} is not the event the checkpoint signed: the chain was rewritten",
                )
                continue
            self._next_seq, self._prev = seq + 1, stored_hash
        self._close()

    def _rechecked(self, prev_hash: str, stored_hash: str, ref: Any) -> bool:
        if self.recheck is None:
            return False
        content = self.recheck(ref)
        return content is not None and chain_hash(prev_hash, content) == stored_hash

    def accept(self, tenant: str, last: int, last_hash: str, events: int) -> None:
        """A chain another reader found whole (`WrittenOrderPass`): it ends at event `last`."""
        self.heads[tenant] = (last, last_hash)
        self.events += events

    def _close(self) -> None:
        if self._tenant is not None and not self._broken:
            self.heads[self._tenant] = (self._next_seq - 1, self._prev)

    def finish(self, *, complete: bool = True) -> list[Break]:
        """The breaks found, by tenant. A `complete` walk saw every chain to its end, so an anchor
        beyond a chain's last event means events were removed (a truncated tail)."""
        self._close()
        self._tenant = None
        for tenant, anchor in self.anchors.items():
            if tenant in self.breaks:
                continue
            last, _ = self.heads.get(tenant, (0, GENESIS_HASH))
            start = self.starts.get(tenant) or self.firsts.get(tenant)
            if anchor.seq > last and complete:
                self.breaks[tenant] = Break(
                    tenant,
                    last + 1,
                    "TRUNCATED",
                    f"the chain ends at event {last}, but a signed checkpoint holds event {anchor.seq}: "
                    f"events {last + 1}-{anchor.seq} were removed",
                )
            elif start is not None and anchor.seq == start.seq and anchor.hash != start.hash:
                # The anchored event was archived: the archive's boundary must be that same event.
                self.breaks[tenant] = Break(
                    tenant,
                    anchor.seq,
                    "REWRITTEN",
                    f"event {anchor.seq} is not the event the checkpoint signed",
                )
        return sorted(self.breaks.values(), key=lambda b: b.tenant)


@dataclass(frozen=True)
class Segment:
    """A run of one tenant's events found whole: it goes on from `first` (the event before it) and
    ends at `last`, `events` events."""

    first: Link
    last: Link
    events: int


@dataclass
class Sighting:
    """What a `WrittenOrderPass` saw: the tenants whose events came whole, as segments, and the
    tenants set aside for the ordered walk."""

    segments: dict[str, Segment]
    doubtful: set[str]
    events: int = 0  # rows read

    def hand_over(self, walk: ChainWalk) -> None:
        """Give `walk` the chains found whole (the doubtful ones it walks itself)."""
        for tenant, segment in self.segments.items():
            walk.accept(tenant, segment.last.seq, segment.last.hash, segment.events)


class WrittenOrderPass:
    """A first look at chains whose events come interleaved, in the order they were written (the
    table's own order, several times faster to read than (tenant, seq) order), over the whole table
    or one part of it.

    Each tenant's events were appended in sequence, so in written order a whole chain still comes
    event n, n+1, n+2... with every hash and link right: such a run is a `Segment`, and once the
    segments of all parts are stitched from the chain's start (`stitch`), the tenant is whole exactly
    as `ChainWalk` would find it, from the same events in the same order. A tenant where anything
    else comes (a gap, a repeat, a mismatch) is set aside in `doubtful` for `ChainWalk` to walk in
    (tenant, seq) order, which names its first break; nothing is concluded about it here.
    """

    def __init__(
        self, *, anchors: Iterable[Link] = (), recheck: Callable[[Any], bytes | None] | None = None
    ) -> None:
        self.anchors = {link.tenant: link for link in anchors}
        self.recheck = recheck
        self.doubtful: set[str] = set()
        self.events = 0
        self._firsts: dict[str, Link] = {}
        # tenant -> [next seq expected, hash of the event before it, events seen]
        self._chains: dict[str, list[Any]] = {}

    def feed(self, rows: Iterable[Row]) -> None:
        sha256, chains, doubtful = hashlib.sha256, self._chains, self.doubtful
        for tenant, seq, prev_hash, stored_hash, content, ref in rows:
            self.events += 1
            chain = chains.get(tenant)
            if chain is None:
                if tenant in doubtful:
                    continue
                chain = chains[tenant] = [seq, prev_hash, 0]  # where `stitch` checks it begins
                self._firsts[tenant] = Link(tenant, seq - 1, prev_hash)
            anchor = self.anchors.get(tenant)
            if (
                seq != chain[0]
                or prev_hash != chain[1]
                or (anchor is not None and seq == anchor.seq and stored_hash != anchor.hash)
                or (
                    sha256(prev_hash.encode() + content).hexdigest() != stored_hash
                    and not self._rechecked(prev_hash, stored_hash, ref)
                )
            ):
                doubtful.add(tenant)
                del chains[tenant]
                continue
            chain[0], chain[1], chain[2] = seq + 1, stored_hash, chain[2] + 1

    def _rechecked(self, prev_hash: str, stored_hash: str, ref: Any) -> bool:
        content = self.recheck(ref) if self.recheck is not None else None
        return content is not None and chain_hash(prev_hash, content) == stored_hash

    def sighting(self) -> Sighting:
        segments = {
            tenant: Segment(self._firsts[tenant], Link(tenant, next_seq - 1, last_hash), events)
            for tenant, (next_seq, last_hash, events) in self._chains.items()
        }
        return Sighting(segments, set(self.doubtful), self.events)


def stitch(parts: Iterable[Sighting], starts: Iterable[Link] = ()) -> Sighting:
    """One sighting from those of consecutive parts of the table, in written order: a tenant is whole
    when its segments follow one another from where its chain starts (event 1 after the genesis hash,
    or an archive boundary in `starts`); any other is doubtful."""
    begins = {link.tenant: link for link in starts}
    parts = list(parts)
    doubtful = set().union(*(part.doubtful for part in parts))
    joined: dict[str, Segment] = {}
    for part in parts:
        for tenant, segment in part.segments.items():
            if tenant in doubtful:
                continue
            before = joined.get(tenant)
            expected = before.last if before else begins.get(tenant, Link(tenant, 0, GENESIS_HASH))
            if (segment.first.seq, segment.first.hash) != (expected.seq, expected.hash):
                doubtful.add(tenant)
                joined.pop(tenant, None)
                continue
            first = before.first if before else segment.first
            joined[tenant] = Segment(first, segment.last, segment.events + (before.events if before else 0))
    return Sighting(joined, doubtful, sum(part.events for part in parts))
