"""Trusted documents: the partner operations of app/graphql/partner_documents.graphql, registered by
hash at start-up, validated then and never again; a partner sends the hash instead of the text; in
production a partner key runs nothing else, while an administrator's token is not concerned."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import httpx
import pytest

import app.graphql.validation_cache as validation_cache
from app.graphql.schema import build_schema
from app.ops.demo.partner import partner_quick_start
from app.ops.principals.credentials import create_principal_with_token
from app.ops.tenants.apply import apply_tenant_files
from app.settings import Settings, resolve_keys
from app.store.crypto import FieldCipher
from app.web import create_app
from tests.livesrv import serve

KEY = base64.urlsafe_b64encode(b"k" * 32).decode()


def _documents():
    return {d.name: d for d in build_schema().trusted_documents}


def test_every_partner_operation_is_registered_by_the_hash_of_its_own_text():
    documents = _documents()
    assert {"CardStatus", "MyPermissions", "PartnerWhoAmI", "ActivateCard", "ChangePassword"} <= set(
        documents
    )
    for document in documents.values():
        assert document.sha256 == hashlib.sha256(document.text.encode()).hexdigest()
        assert f"query {document.name}" in document.text or f"mutation {document.name}" in document.text
    assert "fragment CardFields" in documents["CardStatus"].text
    assert "fragment ServiceResult" not in documents["CardStatus"].text  # only the fragments it uses


async def test_a_trusted_document_is_not_validated_per_request(monkeypatch):
    schema = build_schema()
    validations = []
    original = validation_cache.validate_document
    monkeypatch.setattr(
        validation_cache, "validate_document", lambda *a: validations.append(1) or original(*a)
    )
    trusted = _documents()["PartnerWhoAmI"].text
    for _ in range(3):
        await schema.execute(trusted)
    assert validations == []
    for _ in range(3):
        await schema.execute("{ partnerWhoAmI { outletId } }")
    assert validations == [1]  # an ordinary text: validated once, then remembered


@pytest.fixture(params=["development", "production"])
async def served(request, db_url, sessions, tenants_dir, tmp_path):
    settings = Settings(
        env=request.param,
        database_url=db_url,
        key_file=str(tmp_path / "keys.env"),
        audit_checkpoint_seconds=0,
        **(
            {"data_key": KEY, "lookup_key": KEY, "audit_signing_key": KEY}
            if request.param == "production"
            else {}
        ),
    )
    await apply_tenant_files(sessions, tenants_dir)
    admin = await create_principal_with_token(sessions, tenant_path="cn/440000", role="province_admin")
    started = await partner_quick_start(sessions, FieldCipher(*resolve_keys(settings)), "gz-hall-city")
    with serve(create_app(settings)) as url:
        yield request.param, url, admin.token, started


def _post(url: str, body: dict, **headers: str) -> httpx.Response:
    return httpx.post(f"{url}/graphql", json=body, headers=headers, timeout=20)


def _by_hash(document, variables: dict | None = None) -> dict:
    return {
        "variables": variables or {},
        "extensions": {"persistedQuery": {"version": 1, "sha256Hash": document.sha256}},
    }


def test_a_partner_sends_the_hash_and_in_production_nothing_else(served):
    env, url, admin_token, started = served
    documents = _documents()
    card = started.card
    asked = {"cardNumber": card.card_number, "idNumber": card.id_number, "purpose": started.service}
    by_hash = _post(url, _by_hash(documents["CardStatus"], asked), **{"x-api-key": started.key.key})
    assert (
        by_hash.status_code == 200 and by_hash.json()["data"]["cardStatus"]["cardNumber"] == card.card_number
    )
    by_text = _post(
        url, {"query": documents["CardStatus"].text, "variables": asked}, **{"x-api-key": started.key.key}
    )
    assert by_text.json() == by_hash.json()

    unknown = _post(url, {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "0" * 64}}})
    assert unknown.status_code == 400 and unknown.json()["errors"][0]["extensions"]["code"] == "BAD_INPUT"
    mismatch = _post(
        url,
        {"query": "{ partnerWhoAmI { outletId } }", **_by_hash(documents["PartnerWhoAmI"])},
        **{"x-api-key": started.key.key},
    )
    assert mismatch.status_code == 400 and mismatch.json()["errors"][0]["extensions"]["code"] == "BAD_INPUT"

    own = _post(url, {"query": "{ partnerWhoAmI { outletId } }"}, **{"x-api-key": started.key.key})
    if env == "production":
        assert own.status_code == 403 and own.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    else:
        assert own.json()["data"]["partnerWhoAmI"]["outletId"] == "gz-hall-city"
    person = _post(url, {"query": "{ me { name } }"}, authorization=f"Bearer {admin_token}")
    assert "errors" not in person.json()


def test_the_partner_guide_lists_todays_hashes():
    guide = (Path(__file__).resolve().parents[2] / "docs" / "partner-api.md").read_text(encoding="utf-8")
    listed = dict(re.findall(r"^\| `(\w+)` \| `([0-9a-f]{64})` \|$", guide, re.M))
    assert listed == {name: document.sha256 for name, document in _documents().items()}
