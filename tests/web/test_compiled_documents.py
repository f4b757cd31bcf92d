"""Trusted documents run from their plans (app/graphql/compiled.py) answer exactly what the generic
executor answers: the same bytes and status, refusals, coercion errors, masked bugs and nulls included.

Two twin databases (one cloned from the other) are served, one by the app as it is, one by the same
app with no document compiled; every request goes to both, in the same order, and the answers are
compared byte for byte. A request that changes a card changes it in both twins alike.
"""

from __future__ import annotations

import logging
import random
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import orjson
import psycopg
import pytest
from sqlalchemy import make_url

import app.graphql.trusted_documents as trusted_documents
import app.ops.cards.services as card_services
from app.graphql.compiled import CompiledOperation
from app.graphql.schema import build_schema
from app.graphql.types.card import CardStatus
from app.ops.tenants.apply import apply_tenant_files
from app.settings import Settings
from app.store.db import make_sync_engine
from app.web import create_app
from tests.api.partner_world import (
    GRASSROOTS,
    GZ,
    HOSPITAL,
    ICBC,
    TH,
    grant,
    insert_cards,
    make_card,
    new_key,
)
from tests.livesrv import serve

REQUEST_ID = "req-compiled-twin-0001"


@contextmanager
def twin_of(url: str) -> Iterator[str]:
    """A database holding what `url` holds (its engines closed), dropped afterwards."""
    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite"):
        engine = make_sync_engine(url)
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        engine.dispose()
        twin = parsed.database.replace(".db", "-twin.db")
        shutil.copyfile(parsed.database, twin)
        yield parsed.set(database=twin).render_as_string(hide_password=False)
        return
    name = f"{parsed.database}_twin_{uuid.uuid4().hex[:6]}"
    admin = parsed.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        # A template must have no other session: earlier tests of this process may have left
        # connections in pools they never closed (a CI run failed on three of them).
        connection.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity where datname = %s",
            (parsed.database,),
        )
        connection.execute(f'create database "{name}" template "{parsed.database}"')
    try:
        yield parsed.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture
async def twins(db_url, sessions, tenants_dir, monkeypatch):
    """(compiled server, generic server, outlet -> key, cards, calls of compiled plans)."""
    await apply_tenant_files(sessions, tenants_dir)
    rng = random.Random(11)
    cards = {label: make_card(rng, TH, n) for n, label in enumerate(("a", "b", "c", "d"), start=1)}
    await insert_cards(sessions, list(cards.values()))
    for service in ("info_inquiry", "activation", "password_change", "password_reset"):
        await grant(sessions, service, tenant=GZ, kind="grassroots_platform")
    await grant(sessions, "activation", tenant=GZ, outlet=HOSPITAL)
    for service in ("temp_loss_report", "loss_release", "financial_activation"):
        await grant(sessions, service, tenant=GZ, outlet=ICBC)
    keys = {outlet: await new_key(sessions, outlet) for outlet in (GRASSROOTS, HOSPITAL, ICBC)}
    engine = sessions.kw["bind"]
    await engine.dispose()
    calls = []
    original = CompiledOperation.execute

    async def counted(self, *args):
        calls.append(self.name)
        return await original(self, *args)

    monkeypatch.setattr(CompiledOperation, "execute", counted)
    with twin_of(db_url) as twin_url:
        compiled_app = create_app(Settings(database_url=db_url, audit_checkpoint_seconds=0))
        with monkeypatch.context() as generic:
            generic.setattr(trusted_documents, "compile_operation", lambda *_: None)
            generic_app = create_app(Settings(database_url=twin_url, audit_checkpoint_seconds=0))
        with serve(compiled_app) as compiled_base, serve(generic_app) as generic_base:
            yield compiled_base, generic_base, keys, cards, calls


def _documents():
    return {d.name: d for d in build_schema().trusted_documents}


def _both(twins, body: dict, key: str | None) -> httpx.Response:
    """Sends `body` to both servers; asserts the answers are the same bytes; returns one."""
    compiled_base, generic_base, *_ = twins
    headers = {"x-request-id": REQUEST_ID, **({"x-api-key": key} if key else {})}
    answers = [
        httpx.post(f"{base}/graphql", json=body, headers=headers, timeout=30)
        for base in (compiled_base, generic_base)
    ]
    assert answers[0].status_code == answers[1].status_code
    assert answers[0].headers["content-type"] == answers[1].headers["content-type"]
    assert answers[0].content == answers[1].content, (answers[0].text, answers[1].text)
    return answers[0]


def _by_hash(name: str, variables=None, **extra) -> dict:
    document = _documents()[name]
    return {
        "variables": variables,
        "extensions": {"persistedQuery": {"version": 1, "sha256Hash": document.sha256}},
        **extra,
    }


def _by_text(name: str, variables=None, **extra) -> dict:
    return {"query": _documents()[name].text, "variables": variables, **extra}


def _card(card, **more) -> dict:
    return {"cardNumber": card.card_number, "idNumber": card.id_number, **more}


def _serial(card) -> dict:
    return {"cardSerial": card.card_serial, "idNumber": card.id_number}


def test_every_partner_document_has_a_plan():
    assert {name for name, d in _documents().items() if d.compiled is None} == set()


def test_reads_answer_alike_found_refused_or_malformed(twins):
    _, _, keys, cards, calls = twins
    key, a = keys[GRASSROOTS], cards["a"]
    sent = 0
    for send in (_by_hash, _by_text):
        for name, variables, expected in (
            ("CardStatus", _card(a), None),
            ("CardStatus", _card(a, purpose="activation"), None),
            ("CardStatus", _card(a, purpose="financial_activation"), "FORBIDDEN"),
            ("CardStatus", _card(a, purpose="no_such_service"), "BAD_INPUT"),
            ("CardStatus", {**_card(a), "idNumber": cards["b"].id_number}, "NOT_FOUND"),
            ("CardStatus", {**_card(a), "idNumber": "12345"}, "BAD_INPUT"),
            ("CardStatus", {"cardNumber": a.card_number}, "BAD_INPUT"),  # a variable missing
            ("CardStatus", {**_card(a), "cardNumber": 42}, "BAD_INPUT"),  # not a string
            ("CardStatus", {**_card(a), "idNumber": None}, "BAD_INPUT"),
            ("CardStatus", {**_card(a), "unknown": "x"}, None),
            ("CardStatus", None, "BAD_INPUT"),
            ("CardStatus", [_card(a)], "BAD_INPUT"),  # variables that are not an object
            ("CardStatus", {**_card(a), "cardNumber": "\u0001" + a.card_number}, "NOT_FOUND"),
            ("PartnerWhoAmI", None, None),
            ("MyPermissions", {}, None),
        ):
            answer = _both(twins, send(name, variables), key)
            sent += not isinstance(variables, list)  # a list is refused with the body, before running
            errors = answer.json().get("errors")
            assert (errors[0]["extensions"]["code"] if errors else None) == expected, answer.text
    assert _both(twins, _by_hash("CardStatus", _card(a)), None).json()["errors"][0]["extensions"]["code"] == (
        "UNAUTHENTICATED"
    )
    assert _both(twins, _by_hash("CardStatus", _card(a)), "not-a-key").status_code == 200
    sent += 2
    # The operation's own name runs the plan; another name does not (graphql-core refuses it).
    _both(twins, _by_text("PartnerWhoAmI", operationName="PartnerWhoAmI"), key)
    refused = _both(twins, _by_text("PartnerWhoAmI", operationName="Other"), key)
    assert refused.json()["errors"][0]["extensions"]["code"] == "BAD_INPUT"
    assert len(calls) == sent + 1  # every trusted request but the misnamed one ran from its plan


def test_mutations_change_both_twins_alike(twins):
    _, _, keys, cards, calls = twins
    grassroots, hospital, b = keys[GRASSROOTS], keys[HOSPITAL], cards["b"]
    icbc = keys[ICBC]
    pins = {"oldPin": "654321", "newPin": "382915"}
    steps = [
        ("ActivateCard", _card(b, channel="hospital_first_use", idempotencyKey="act-0001"), hospital),
        ("ActivateCard", _card(b, channel="hospital_first_use", idempotencyKey="act-0001"), hospital),
        ("ActivateCard", _card(b, channel="bank_counter", idempotencyKey="act-0002"), hospital),
        ("ChangePassword", _card(b, **pins, idempotencyKey="pin-0001"), grassroots),
        ("ChangePassword", _card(b, **{**pins, "oldPin": "123456"}, idempotencyKey="pin-0002"), grassroots),
        (
            "ResetPassword",
            _card(b, identityVerified=False, newPin="492817", idempotencyKey="rst-01"),
            grassroots,
        ),
        ("ReportTemporaryLoss", _card(b, idempotencyKey="loss-0001"), icbc),
        ("ReleaseLoss", _card(b, idempotencyKey="rel-0001"), icbc),
        ("ReportFormalLoss", _card(cards["c"], idempotencyKey="loss-0002"), icbc),
        (
            "RecordBankService",
            {"service": "financial_activation", **_serial(b), "idempotencyKey": "bk-01"},
            icbc,
        ),
        (
            "ReportFinancialActivation",
            {**_serial(b), "bankCardNumber": "1", "idempotencyKey": "fin-01"},
            icbc,
        ),
        ("UnlockPassword", _card(b, idempotencyKey="unl-0001"), grassroots),
        ("ActivateCard", {"cardNumber": b.card_number}, hospital),  # the input incomplete
    ]
    codes = []
    for name, fields, key in steps:
        answer = _both(twins, _by_hash(name, {"input": fields}), key)
        errors = answer.json().get("errors")
        codes.append(errors[0]["extensions"]["code"] if errors else None)
    assert codes[:2] == [None, None] and codes[4] is None and codes[6:8] == [None, None]
    assert codes[3] == "BAD_INPUT" and codes[-1] == "BAD_INPUT"
    assert len(calls) == len(steps)


def test_a_bug_is_masked_alike_and_logged_alike(twins, monkeypatch, caplog):
    _, _, keys, cards, _ = twins

    async def broken(*_args, **_kwargs):
        raise RuntimeError("a bug in the use case, holding 110101199003077777")

    monkeypatch.setattr(card_services, "card_status", broken)
    with caplog.at_level(logging.INFO, logger="ssc.graphql"):
        answer = _both(twins, _by_hash("CardStatus", _card(cards["a"])), keys[GRASSROOTS])
    assert answer.json()["errors"][0]["extensions"] == {"code": "INTERNAL", "requestId": REQUEST_ID}
    assert answer.json()["data"] is None
    logged = [r.getMessage().splitlines()[0] for r in caplog.records if r.name == "ssc.graphql"]
    assert logged == [f"unexpected error in cardStatus (operation CardStatus, request {REQUEST_ID})"] * 2
    assert "110101199003077777" not in caplog.text


def test_a_null_in_a_non_null_field_goes_up_alike(twins, monkeypatch):
    """A field that may not be null but is: the error at that field, null up to the nearest place
    that may be null — here the whole answer."""
    _, _, keys, cards, _ = twins
    original = CardStatus.from_view

    def without_serial(view):
        status = original(view)
        status.card_serial = None
        return status

    monkeypatch.setattr(CardStatus, "from_view", without_serial)
    answer = _both(twins, _by_hash("CardStatus", _card(cards["a"])), keys[GRASSROOTS])
    error = answer.json()["errors"][0]
    assert answer.json()["data"] is None
    assert error["path"] == ["cardStatus", "cardSerial"] and error["extensions"]["code"] == "INTERNAL"


def test_a_trusted_document_in_another_request_shape_runs_from_its_plan_too(twins):
    """Partners' usual shape skips strawberry's HTTP handling (app/graphql/request_shape.py); another
    shape — here a content type with a charset — goes through strawberry, and still runs the plan,
    with the same answer."""
    compiled_base, _, keys, cards, calls = twins
    body = orjson.dumps(_by_hash("CardStatus", _card(cards["a"])))
    answers = [
        httpx.post(
            f"{compiled_base}/graphql",
            content=body,
            headers={"content-type": kind, "x-api-key": keys[GRASSROOTS], "x-request-id": REQUEST_ID},
            timeout=30,
        )
        for kind in ("application/json", "application/json; charset=utf-8")
    ]
    assert answers[0].content == answers[1].content and answers[0].json()["data"]["cardStatus"]
    assert calls == ["CardStatus", "CardStatus"]
