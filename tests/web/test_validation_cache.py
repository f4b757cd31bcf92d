"""Validation results remembered by query text: each text is validated once per schema, and a
schema's own rules decide."""

from __future__ import annotations

import pytest

from app.graphql import validation_cache
from app.graphql.schema import build_schema
from app.ops.errors import OpsError
from app.settings import Settings

DEEP = "{ me { roles { role } } }"  # deeper than 1


class Anonymous:
    """A request context without a caller: a query that passes validation meets UNAUTHENTICATED."""

    async def actor(self):
        raise OpsError("UNAUTHENTICATED", "no token")


@pytest.fixture
def validations(monkeypatch) -> list[str]:
    seen: list[str] = []
    validate = validation_cache.validate_document

    def counting(schema, document, rules):
        seen.append(document.loc.source.body)
        return validate(schema, document, rules)

    monkeypatch.setattr(validation_cache, "validate_document", counting)
    return seen


async def test_a_query_text_is_validated_once_and_its_verdict_kept(validations):
    schema = build_schema(Settings(graphql_max_depth=1))
    for _ in range(3):
        assert (await schema.execute("{ __typename }")).errors is None
        refused = await schema.execute(DEEP, context_value=Anonymous())
        assert refused.errors and "depth" in refused.errors[0].message
    assert sorted(validations) == sorted(["{ __typename }", DEEP])


async def test_each_schema_validates_by_its_own_rules(validations):
    strict, lenient = build_schema(Settings(graphql_max_depth=1)), build_schema(Settings())
    assert "depth" in (await strict.execute(DEEP, context_value=Anonymous())).errors[0].message
    reached = await lenient.execute(DEEP, context_value=Anonymous())
    assert reached.errors[0].extensions["code"] == "UNAUTHENTICATED"
    assert validations == [DEEP, DEEP]
