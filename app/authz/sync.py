"""Keeping a worker's in-memory policy in step with the database: load once, then tail the log.

Changes are applied incrementally, never by reloading. On PostgreSQL a LISTEN connection wakes
the tailer as soon as a writer commits (writers NOTIFY in the same transaction), with polling as
the fallback should a notification be lost or the listener drop; on SQLite it polls.

The position in the change log is the policy's *revision* (docs/api.md, Revisions). A request that
changed the policy catches the worker up before it is answered (`catch_up`), so the worker's next
request sees the change (read your writes); a request that names a revision it must see waits until
the worker has applied it (`reach`). Catching up is serialised: changes are applied once, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Callable

import psycopg
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from app.authz.snapshot import PolicySnapshots
from app.store.policy import (
    NOTIFY_CHANNEL,
    Change,
    changes_after,
    keep_committed,
    last_change_id,
    stream_lines,
)

log = logging.getLogger("ssc.authz.sync")

Apply = Callable[[Change], None]
YIELD_EVERY = 500
LOG_PAGE = 10_000  # log entries read at once
HELD_BACK_PAUSE_S = 0.002
# A start that replayed this many changes after its snapshot writes a fresh one (a bulk grant is
# 100,000: replaying them at every restart would cost seconds).
SNAPSHOT_REFRESH = 20_000
Load = Callable[[list[tuple[str, ...]]], None]


class RevisionUnknown(Exception):
    """A revision later than anything committed: no change log position anyone was handed."""


class PolicyTailer:
    """Loads the policy through `load`, then feeds every later change to `apply`, in log order."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        load: Load,
        apply: Apply,
        database_url: str,
        poll_interval: float = 0.1,
        listen_poll_interval: float = 1.0,
        on_loaded: Callable[[], None] = lambda: None,
        on_poll: Callable[[int], None] = lambda behind: None,
        snapshots: PolicySnapshots | None = None,
    ) -> None:
        """`on_poll(behind)` follows each poll of the log: how many changes this worker had not
        applied when it looked (its lag, for the metrics). With `snapshots`, a start reads the
        policy from a snapshot when it may (app/authz/snapshot.py) and writes one when it had to
        read the database or replay much of the log, and so does a stop."""
        self.sessions = sessions
        self._on_poll = on_poll
        self._load, self._apply, self._on_loaded = load, apply, on_loaded
        self.last_id = 0
        self._url = database_url
        self._postgres = make_url(database_url).get_backend_name() == "postgresql"
        self._interval = listen_poll_interval if self._postgres else poll_interval
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        # One catch-up at a time (the tailer's own and those of requests): each change applied once.
        self._applying = asyncio.Lock()
        self._committed_here = keep_committed(sessions.kw["bind"])
        self._snapshots = snapshots
        self.loaded = False

    async def load(self) -> int:
        """Load the policy: from the snapshot, then the log after it, when there is one to use;
        else every line from the database. Returns the lines read from the database.

        The cyclic garbage collector is paused meanwhile: the policy is millions of containers that
        hold no cycles, and collections triggered by their allocation would walk them again and
        again (a third of the time it takes to read a snapshot)."""
        collecting = gc.isenabled()
        gc.disable()
        try:
            return await self._load_policy()
        finally:
            if collecting:
                gc.enable()

    async def _load_policy(self) -> int:
        if self._snapshots is not None and (position := await self._snapshots.restore(self.sessions)):
            self.last_id = position
            replayed = await self.catch_up()
            log.info(
                "policy read from snapshot %s (position %s), then %s later changes from the log",
                self._snapshots.path,
                position,
                replayed,
            )
            if replayed >= SNAPSHOT_REFRESH:
                await self._snapshots.save(self.sessions, self.last_id)
            count = 0
        else:
            count = await self._load_lines()
            log.info("policy loaded from the database: %s lines (position %s)", count, self.last_id)
            if self._snapshots is not None:
                await self._snapshots.save(self.sessions, self.last_id)
        self.loaded = True
        self._on_loaded()
        return count

    async def _load_lines(self) -> int:
        """Read every line into `load`, chunk by chunk.

        The log position is read first, in the same transaction: a change committed between the two
        reads is then applied again by the tailer, which is harmless (lines form a set, and replaying
        a suffix of add/remove operations converges on the state the last one left).
        """
        count = 0
        async with self.sessions() as session, session.begin():
            self.last_id = await last_change_id(session)
            async for chunk in stream_lines(session):
                self._load(chunk)
                count += len(chunk)
        return count

    @property
    def revision(self) -> int:
        """The last change this worker has applied."""
        return self.last_id

    async def catch_up(self) -> int:
        """Apply every change committed since the last one seen; returns how many.

        What this worker committed itself is applied from memory (`keep_committed`); only the entries
        around it (other workers' changes) are read from the log."""
        async with self._applying:
            applied = 0
            while True:
                own = self._committed_here.after(self.last_id)
                # Entries before our own are committed (or rolled back, leaving a gap in the ids):
                # appends are serialised until commit, so what the log shows of them is all, even of
                # a segment of ours still committing. Without one of ours committed, stop before the
                # first still committing: its request applies it from memory.
                stop = own[0].id if own is not None else self._committed_here.held_back(self.last_id)
                if stop is None or stop > self.last_id + 1:
                    while (read := await self._read_page(before=stop)) == LOG_PAGE:
                        applied += read
                    applied += read
                if own is None:
                    return applied
                fresh = [c for c in own if c.id > self.last_id]
                await self._apply_all(fresh)
                applied += len(fresh)

    async def _read_page(self, before: int | None) -> int:
        """Read one page of the log after the last change seen (and before `before`) and apply it."""
        async with self.sessions() as session:
            changes = await changes_after(session, self.last_id, LOG_PAGE, before=before)
        await self._apply_all(changes)
        return len(changes)

    async def _apply_all(self, changes: list[Change]) -> None:
        for n, change in enumerate(changes, start=1):
            self._apply(change)
            self.last_id = change.id
            if n % YIELD_EVERY == 0:
                # A bulk grant is 100,000 changes: let the worker's other requests run between slices
                # (they may see part of it applied, never a change out of order).
                await asyncio.sleep(0)

    async def reach(self, revision: int, timeout: float) -> bool:
        """Make sure the worker has applied `revision`, waiting at most `timeout` seconds; False if it
        could not (the caller answers STALE). RevisionUnknown if nothing that late was committed."""
        if revision <= self.last_id:
            return True
        try:
            async with asyncio.timeout(timeout):
                await self.catch_up()
                # A segment of ours between its commit and its hook holds the tailer back: briefly.
                while revision > self.last_id and self._committed_here.held_back(self.last_id) is not None:
                    await asyncio.sleep(HELD_BACK_PAUSE_S)
                    await self.catch_up()
        except TimeoutError:
            return revision <= self.last_id
        if revision > self.last_id:
            # Everything committed is applied now, and the log's ids become visible in order.
            raise RevisionUnknown(revision)
        return True

    async def start(self) -> bool:
        """Load and start tailing. A database that cannot be read yet does not stop the process:
        loading is retried in the background and `loaded` (which /readyz reports) stays False."""
        try:
            await self.load()
        except Exception:
            log.exception("could not load the policy; retrying in the background")
        self._tasks.append(asyncio.create_task(self._run(), name="policy-tailer"))
        if self._postgres:
            self._tasks.append(asyncio.create_task(self._listen(), name="policy-listener"))
        return self.loaded

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._snapshots is not None and self.loaded:
            # The next start then replays only what is committed after this one.
            try:
                await self._snapshots.save(self.sessions, self.last_id)
            except Exception as err:  # the database gone: the stop goes on, the next start loads
                log.warning("no policy snapshot written at stop: %s", type(err).__name__)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
            try:
                if self.loaded:
                    self._on_poll(await self.catch_up())
                else:  # the start-up load failed and is retried: once done, nothing is behind
                    await self.load()
                    self._on_poll(0)
            except Exception:  # keep tailing: a passing database error must not stop enforcement updates
                log.exception("policy tailer could not read the change log; retrying")

    async def _listen(self) -> None:
        dsn = make_url(self._url).set(drivername="postgresql").render_as_string(hide_password=False)
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
                    await conn.execute(f"listen {NOTIFY_CHANNEL}")
                    self._wake.set()  # anything committed while we were not listening
                    async for _ in conn.notifies():
                        self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception:  # polling covers the gap; reconnect after a pause
                log.warning("policy listener lost its connection; polling until it is back", exc_info=True)
                await asyncio.sleep(self._interval)
