"""What an operator sees of a running `ssc serve --workers 2`: /metrics over both workers (requests and
latency per operation, decisions by result and reason, policy lines and change-log lag per worker, the
audit writer's batches, rate-limit refusals), JSON log lines carrying the request id that the audit
event of the same request also carries, never a personal number; and a SIGTERM that lets the calls in
flight finish with their audit events written."""

from __future__ import annotations

import json
import re
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from app.logs import mask_numbers, request_id_from
from app.ops.demo.partner import partner_quick_start
from app.ops.principals.credentials import create_principal_with_token
from app.ops.tenants.apply import apply_tenant_files
from app.settings import Settings, resolve_keys
from app.store.crypto import FieldCipher
from app.store.tables import AuditEvent
from tests.procsrv import ServeProcess, worker

CARD_STATUS = """query($card: String!, $id: String!, $purpose: String!) {
  cardStatus(cardNumber: $card, idNumber: $id, purpose: $purpose) { status } }"""
UNKNOWN_CARD = "D99999999"


def _card_call(started, card_number: str | None = None) -> dict:
    card = started.card
    asked = {"card": card_number or card.card_number, "id": card.id_number, "purpose": started.service}
    return {"query": CARD_STATUS, "variables": asked}


def _both_workers_polled(client: httpx.Client) -> str:
    """The metrics page once both workers hold the policy (the second may start a little later)."""
    deadline = time.monotonic() + 20
    while True:
        page = client.get("/metrics").text
        lines = _metric(page, "ssc_policy_lines")
        if len(lines) == 2 and min(lines) > 0:
            return page
        assert time.monotonic() < deadline, f"the workers' policy lines: {lines}"
        time.sleep(0.1)


def test_a_personal_number_in_a_message_is_masked():
    assert mask_numbers("id 440106199705266674 card 6217001590830166131 at 20261203") == (
        "id 4401**********6674 card 6217***********6131 at 20261203"
    )
    assert mask_numbers("order ab440106199705266674 x") == "order ab440106199705266674 x"  # part of a token


@pytest.mark.parametrize("header", [None, "", "a" * 65, "id\r\nforged: 1", "名字", "x y"])
def test_a_request_id_that_is_no_plain_token_is_replaced(header):
    made = request_id_from(header)
    assert made != header and re.fullmatch(r"[0-9a-f]{32}", made)
    assert request_id_from("lb-7f3a.19:2") == "lb-7f3a.19:2"


@pytest.fixture
async def deployment(db_url, sessions, tenants_dir, tmp_path):
    """A database with the demo tenants, an administrator's token, a partner key with its card."""
    key_file = tmp_path / "keys.env"
    await apply_tenant_files(sessions, tenants_dir)
    admin = await create_principal_with_token(sessions, tenant_path="cn/440000", role="province_admin")
    settings = Settings(database_url=db_url, key_file=str(key_file))
    started = await partner_quick_start(sessions, FieldCipher(*resolve_keys(settings)), "gz-hall-city")
    return db_url, key_file, admin.token, started


def _metric(page: str, name: str, **labels: str) -> list[float]:
    """The values of `name` with these labels (one per worker for the per-worker gauges)."""
    found = []
    for line in page.splitlines():
        named = line.startswith(name + "{") or line.startswith(name + " ")
        if named and all(f'{k}="{v}"' in line for k, v in labels.items()):
            found.append(float(line.rsplit(" ", 1)[1]))
    return found


async def test_two_workers_give_one_metrics_page_and_json_logs_with_the_request_id(deployment, sessions):
    db_url, key_file, token, started = deployment
    card = started.card
    with worker(db_url, key_file, "--workers", "2") as base:
        with httpx.Client(base_url=base, timeout=20) as client:
            _both_workers_polled(client)
            for n in range(40):  # over both workers (the kernel spreads connections)
                client.post(
                    "/graphql",
                    json=_card_call(started),
                    headers={
                        "x-api-key": started.key.key,
                        "x-request-id": f"probe-{n}",
                        "connection": "close",
                    },
                )
            refused = client.post(
                "/graphql",
                json=_card_call(started, UNKNOWN_CARD),
                headers={"x-api-key": started.key.key, "x-request-id": "probe-wrong-id"},
            )
            assert refused.headers["x-request-id"] == "probe-wrong-id"
            me = client.post(
                "/graphql", json={"query": "{ me { name } }"}, headers={"authorization": f"Bearer {token}"}
            )
            assert me.status_code == 200 and re.fullmatch(r"[0-9a-f]{32}", me.headers["x-request-id"])
            page = client.get("/metrics").text
        log = next(key_file.parent.glob("worker-*.log")).read_text(encoding="utf-8")

    assert sum(_metric(page, "ssc_graphql_requests_total", operation="cardStatus")) == 41
    assert _metric(page, "ssc_graphql_requests_total", operation="me", outcome="ok") == [1.0]
    assert _metric(page, "ssc_graphql_request_seconds_count", operation="cardStatus") == [41.0]
    assert _metric(page, "ssc_decisions_total", result="allow") == [40.0]
    assert _metric(page, "ssc_decisions_total", result="deny", reason="NOT_FOUND") == [1.0]
    assert len(_metric(page, "ssc_policy_change_lag")) == 2
    assert sum(_metric(page, "ssc_audit_batch_events_sum")) >= 41

    entries = [json.loads(line) for line in log.splitlines() if line.strip()]  # every line is JSON
    assert all({"time", "level", "logger", "message", "pid"} <= set(entry) for entry in entries)
    served_by = {
        e["pid"] for e in entries if e["logger"] == "uvicorn.access" and "POST /graphql" in e["message"]
    }
    assert len(served_by) == 2, "the calls were not spread over both workers"
    assert any(entry.get("request_id") == "probe-wrong-id" for entry in entries)
    assert card.id_number not in log and started.key.key not in log
    async with sessions() as session:
        event = (
            await session.exec(select(AuditEvent).where(AuditEvent.request_id == "probe-wrong-id"))
        ).one()
    assert event.decision == "deny" and event.action.startswith("card.")


def _serve_then_terminate(db_url: str, key_file: Path, started, attempt: int) -> list[tuple[str, bool]]:
    """One `ssc serve` under a steady flow of partner calls, sent SIGTERM once calls are flowing:
    the calls answered 200, each with whether it was still running when the signal went."""
    server = ServeProcess(
        db_url,
        key_file,
        partner_rate_limit="100000/second",
        partner_rate_limit_max="100000/second",
    )
    base = server.base
    signalled = [float("inf")]
    answered_before = []

    def call(n: int) -> tuple[str, bool] | None:
        sent = time.monotonic()
        try:
            answer = httpx.post(
                f"{base}/graphql",
                json=_card_call(started),
                headers={"x-api-key": started.key.key, "x-request-id": f"term-{attempt}-{n}"},
                timeout=30,
            )
        except httpx.TransportError:  # refused at the door, after the signal
            return None
        if answer.status_code != 200 or "errors" in answer.json():
            return None
        answered_before.append(1)
        return f"term-{attempt}-{n}", sent < signalled[0] < time.monotonic()

    try:
        server.start()
        deadline = time.monotonic() + 30
        with ThreadPoolExecutor(max_workers=16) as pool:
            futures = [pool.submit(call, n) for n in range(600)]
            # Past the first calls (which verify the key, slow by design), into a steady flow.
            while len(answered_before) < 40 and time.monotonic() < deadline:
                time.sleep(0.01)
            signalled[0] = time.monotonic()
            server.signal(signal.SIGTERM)
            results = [r for r in (f.result() for f in futures) if r is not None]
        # uvicorn exits by raising the signal again once it has shut down in order.
        assert server.process.wait(timeout=40) in (0, -signal.SIGTERM)
    finally:
        server.stop()
    assert len(results) < 600, "the server went on accepting calls after the signal"
    return results


async def test_sigterm_lets_the_calls_in_flight_finish_with_their_audit_events(deployment, sessions):
    db_url, key_file, _, started = deployment
    # Whether a call is inside the server when the signal goes is up to timing: up to three runs, one
    # of which must answer such a call (a shutdown that dropped them would fail all three).
    answered: set[str] = set()
    for attempt in range(3):
        results = _serve_then_terminate(db_url, key_file, started, attempt)
        answered |= {request_id for request_id, _ in results}
        if any(in_flight for _, in_flight in results):
            break
    else:
        pytest.fail("in three runs, no call in flight at the signal was answered")
    async with sessions() as session:
        ids = select(AuditEvent.request_id).where(AuditEvent.request_id.like("term-%"))
        audited = set((await session.exec(ids)).all())
    assert answered <= audited, f"{len(answered - audited)} answered calls have no audit event"
