"""Snapshots of a worker's loaded policy on local disk, so that a restarted worker serves in seconds.

Reading a million policy lines from the database and indexing them takes about nine seconds
(BENCHMARKS.md); a worker that was killed, or restarted for a deploy, would answer nothing all that
time. So a worker writes its index, as it stood at one position of the change log, to a file: after
a load from the database, after a start that had many changes to replay, and when it stops. A
starting worker reads the file instead of the lines, then replays the log from that position like
any worker catching up. It reads it only when all of these hold, and loads from the database
otherwise:

- the file's MAC verifies under a key derived from the lookup key: marshal is no format for data
  someone else wrote, and a file the platform did not write is never read;
- it was written by this code: a fingerprint of the engine's modules, the model, the built-in lines
  and the Python version (marshal's format is the interpreter's);
- for this database (its URL, without the password), whose change log still holds, at the
  snapshot's position, the very entry the snapshot saw there: a database restored from a backup, or
  another one at the same address, does not.

The file: a format line, the MAC, the header's length and the header (code fingerprint, database,
log position and the entry there), then the index, written with marshal (builtin containers only:
interned strings come back interned, shared ones once). Files are replaced atomically, so the
workers of one machine share the directory.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import marshal
import os
import sys
import tempfile
from functools import cache
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from app.authz.policy_state import POLICIES_DIR, BusinessPolicy
from app.store.policy import change_entry

log = logging.getLogger("ssc.authz.snapshot")

FORMAT = b"ssc-policy-snapshot-1\n"
MAC_BYTES = 32
HEADER_SIZE_BYTES = 8
_FINGERPRINTED = (
    Path(__file__).with_name("engine.py"),
    Path(__file__).with_name("role_links.py"),
    Path(__file__).with_name("policy_state.py"),
    Path(__file__).with_name("model.py"),
    Path(__file__),
    POLICIES_DIR / "business.conf",
    POLICIES_DIR / "business_builtin.csv",
)


@cache
def code_fingerprint() -> str:
    """What the index's shape depends on: a snapshot of other code is never read."""
    digest = hashlib.sha256(FORMAT + sys.version.encode())
    for path in _FINGERPRINTED:
        digest.update(path.read_bytes())
    return digest.hexdigest()


class PolicySnapshots:
    """The snapshot file of one database's policy in `directory`, for `policy`."""

    def __init__(self, directory: Path, database_url: str, lookup_key: bytes, policy: BusinessPolicy) -> None:
        self.database = make_url(database_url).render_as_string(hide_password=True)
        name = hashlib.sha256(self.database.encode()).hexdigest()[:16]
        self.path = Path(directory) / f"policy-{name}.snapshot"
        self._key = hmac.new(lookup_key, b"ssc policy snapshot", hashlib.sha256).digest()
        self._policy = policy
        # The log position of the snapshot this worker read or wrote last (0: none).
        self.position = 0

    async def restore(self, sessions: async_sessionmaker[AsyncSession]) -> int | None:
        """Fill the policy from the snapshot and return its log position, or None (and leave the
        policy as it was) when there is none this worker may use."""
        try:
            blob = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as err:
            log.warning("policy snapshot %s unreadable (%s): loading from the database", self.path, err)
            return None
        payload = self._verified(blob)
        if payload is None:
            # Written under another lookup key (a rotation, or tests sharing a database's address),
            # damaged, or not the platform's at all.
            log.warning("policy snapshot %s does not verify under this lookup key: not used", self.path)
            return None
        # The header first, on its own: the state is unmarshalled only by the code that wrote it.
        size = int.from_bytes(payload[:HEADER_SIZE_BYTES], "big")
        try:
            fingerprint, database, position, anchor = marshal.loads(payload[HEADER_SIZE_BYTES:][:size])
        except (EOFError, ValueError, TypeError):
            fingerprint = database = None
        if fingerprint != code_fingerprint() or database != self.database:
            log.info("policy snapshot %s is of other code or another database: not used", self.path)
            return None
        async with sessions() as session:
            found = await change_entry(session, position)
        if found != tuple(anchor):
            log.info("the change log lacks position %s of snapshot %s: not used", position, self.path)
            return None
        self._policy.restore(marshal.loads(payload[HEADER_SIZE_BYTES + size :]))
        self.position = position
        return position

    async def save(self, sessions: async_sessionmaker[AsyncSession], position: int) -> bool:
        """Write the policy as it stands, which reflects the log up to `position`; False when there
        is nothing to anchor it to (an empty log) or the file cannot be written."""
        if position <= 0 or position in (self.position, self._position_on_disk()):
            return False  # nothing to anchor it to, or written already (by this worker or another)
        async with sessions() as session:
            anchor = await change_entry(session, position)
        if anchor is None:
            return False
        header = marshal.dumps((code_fingerprint(), self.database, position, anchor))
        state = marshal.dumps(self._policy.state())
        mac = hmac.new(self._key, len(header).to_bytes(HEADER_SIZE_BYTES, "big"), hashlib.sha256)
        mac.update(header)
        mac.update(state)
        temporary = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name, suffix=".tmp")
            with os.fdopen(handle, "wb") as out:
                out.write(FORMAT + mac.digest() + len(header).to_bytes(HEADER_SIZE_BYTES, "big") + header)
                out.write(state)
            os.replace(temporary, self.path)
        except OSError as err:
            log.warning("could not write policy snapshot %s: %s", self.path, err)
            if temporary is not None:
                Path(temporary).unlink(missing_ok=True)
            return False
        self.position = position
        return True

    def _position_on_disk(self) -> int | None:
        """The position of the snapshot on disk, read from its header alone (not verified: used only
        to skip writing the same snapshot again when several workers stop together)."""
        start = len(FORMAT) + MAC_BYTES
        try:
            with self.path.open("rb") as file:
                head = file.read(start + HEADER_SIZE_BYTES)
                header = file.read(int.from_bytes(head[start:], "big"))
            fingerprint, database, position, _ = marshal.loads(header)
        except (OSError, EOFError, ValueError, TypeError):
            return None
        return position if (fingerprint, database) == (code_fingerprint(), self.database) else None

    def _verified(self, blob: bytes) -> memoryview | None:
        """The payload after the format line and the MAC, if the MAC is this platform's."""
        start = len(FORMAT) + MAC_BYTES
        if not blob.startswith(FORMAT) or len(blob) < start:
            return None
        view = memoryview(blob)
        payload = view[start:]
        expected = hmac.new(self._key, payload, hashlib.sha256).digest()
        return payload if hmac.compare_digest(expected, bytes(view[len(FORMAT) : start])) else None
