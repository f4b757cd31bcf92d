"""A bounded load of administrators' changes and partners' calls against one or more `ssc serve`
processes, keeping what each caller was told: a call is acknowledged when it was answered without
an error, and only then must its change (and its audit event, found by the request id the caller
sent) survive whatever happens to the server afterwards."""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx

NANSHAN = "cn/440000/440300/440305"  # Shenzhen grants by one person: a grant is in force at once
VALID_FROM = "2026-01-01T00:00:00Z"
CREATE = """mutation($id: String!) { createOutlet(input: {id: $id, tenant: "cn/440000/440300/440305",
  kind: "hrss_hall", name: "故障测试网点"}) { outlet { id } } }"""
GRANT = """mutation($id: String!, $from: DateTime!) { grantService(input: {tenant: "cn/440000/440300/440305",
  outletId: $id, service: "info_inquiry", validFrom: $from, documentRef: "深人社函〔2026〕9号"}) {
  revision grant { id state version } } }"""
REVOKE = """mutation($id: ID!, $v: Int!) { revokeGrant(input: {id: $id, reason: "故障测试：撤销",
  expectedVersion: $v}) { revision grant { id state } } }"""
STATUS = """query($c: String!, $i: String!, $p: String!) {
  cardStatus(cardNumber: $c, idNumber: $i, purpose: $p) { status } }"""
RESET = """mutation($c: String!, $i: String!, $pin: String!, $k: String!) { resetPassword(input: {
  cardNumber: $c, idNumber: $i, identityVerified: true, newPin: $pin, idempotencyKey: $k}) {
  card { status } replayed } }"""
PERMISSIONS = "{ myPermissions { service grantIds } }"
PINS = ("258147", "369258", "147036", "802461")


@dataclass
class Told:
    """What the callers were told, shared by the load's threads."""

    acknowledged: list[str] = field(default_factory=list)  # request ids answered without an error
    outlets: list[str] = field(default_factory=list)
    grants: dict[str, str] = field(default_factory=dict)  # grant id -> state the caller was told
    revokes_tried: set[str] = field(default_factory=set)
    codes: Counter = field(default_factory=Counter)  # error codes and "unanswered"
    internal: list[str] = field(default_factory=list)  # errors without a code, or INTERNAL
    revision: str = ""  # the highest policy revision acknowledged


class Load:
    """Threads calling `bases` in turn until `stop()`."""

    def __init__(self, bases: list[str], token: str, partners: list, *, prefix: str) -> None:
        self.bases = bases
        self.token = token
        self.partners = partners  # PartnerStart of the keyed outlets
        self.prefix = prefix
        self.told = Told()
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=8)
        self._futures = []

    def call(self, base: str, headers: dict, query: str, variables: dict) -> dict | None:
        """One call; its data when answered without an error, else None (the error is counted)."""
        request_id = f"{self.prefix}-{next(self._ids)}"
        try:
            answer = httpx.post(
                f"{base}/graphql",
                json={"query": query, "variables": variables},
                headers={**headers, "x-request-id": request_id},
                timeout=30,
            )
        except httpx.TransportError:  # the server died under the call: nobody was told anything
            with self._lock:
                self.told.codes["unanswered"] += 1
            return None
        errors = answer.json().get("errors") or ()
        with self._lock:
            if errors:
                code = (errors[0].get("extensions") or {}).get("code")
                self.told.codes[code] += 1
                if code in (None, "INTERNAL"):
                    self.told.internal.append(f"{code}: {errors[0].get('message')}")
                return None
            self.told.acknowledged.append(request_id)
        return answer.json()["data"]

    def _note_revision(self, revision: str) -> None:
        with self._lock:
            # Revisions are change-log ids as decimal text: compare them as numbers.
            if not self.told.revision or int(revision) > int(self.told.revision):
                self.told.revision = revision

    def administrator(self, first: int) -> None:
        auth = {"authorization": f"Bearer {self.token}"}
        for n in itertools.count(first, 97):
            if self._stop.is_set():
                return
            base = self.bases[n % len(self.bases)]
            outlet_id = f"{self.prefix}-o{n}"
            made = self.call(base, auth, CREATE, {"id": outlet_id})
            if made is None:
                continue
            with self._lock:
                self.told.outlets.append(outlet_id)
            granted = self.call(base, auth, GRANT, {"id": outlet_id, "from": VALID_FROM})
            if granted is None:
                continue
            grant = granted["grantService"]["grant"]
            self._note_revision(granted["grantService"]["revision"])
            with self._lock:
                self.told.grants[grant["id"]] = grant["state"]
            if n % 3 == 0:  # a third are revoked again, on the other worker
                with self._lock:
                    self.told.revokes_tried.add(grant["id"])
                other = self.bases[(n + 1) % len(self.bases)]
                revoked = self.call(other, auth, REVOKE, {"id": grant["id"], "v": grant["version"]})
                if revoked is not None:
                    self._note_revision(revoked["revokeGrant"]["revision"])
                    with self._lock:
                        self.told.grants[grant["id"]] = revoked["revokeGrant"]["grant"]["state"]

    def partner(self, first: int) -> None:
        for n in itertools.count(first, 97):
            if self._stop.is_set():
                return
            base = self.bases[n % len(self.bases)]
            started = self.partners[n % len(self.partners)]
            card = started.card
            key = {"x-api-key": started.key.key}
            asked = {"c": card.card_number, "i": card.id_number}
            if started.service == "password_reset" and n % 2:
                pin = PINS[n % len(PINS)]
                self.call(base, key, RESET, {**asked, "pin": pin, "k": f"{self.prefix}-reset-{n}"})
            else:
                self.call(base, key, STATUS, {**asked, "p": started.service})

    def start(self, administrators: int = 3, partners: int = 4) -> None:
        for n in range(administrators):
            self._futures.append(self._pool.submit(self.administrator, n))
        for n in range(partners):
            self._futures.append(self._pool.submit(self.partner, n))

    def stop(self) -> Told:
        self._stop.set()
        for future in self._futures:
            future.result()
        self._pool.shutdown()
        return self.told


def permissions(base: str, key: str, revision: str, *, timeout: float = 15) -> dict[str, list[str]]:
    """The key's permissions as this worker enforces them, once it has applied `revision` (a worker
    behind it answers STALE, and is asked again)."""
    deadline = time.monotonic() + timeout
    while True:
        body = httpx.post(
            f"{base}/graphql",
            json={"query": PERMISSIONS},
            headers={"x-api-key": key, "ssc-revision": revision},
            timeout=10,
        ).json()
        errors = body.get("errors") or ()
        if not errors:
            return {p["service"]: sorted(p["grantIds"]) for p in body["data"]["myPermissions"]}
        code = (errors[0].get("extensions") or {}).get("code")
        if code != "STALE" or time.monotonic() > deadline:
            raise AssertionError(f"myPermissions at {base}: {errors}")
        time.sleep(0.1)
