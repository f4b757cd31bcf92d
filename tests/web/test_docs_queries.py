"""Every GraphQL document written in the README and the guides is valid against the schema, so a
reader who copies an example never meets a field that was renamed since."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from graphql import parse, validate

from app.graphql.schema import build_schema

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# "query":"…" inside the JSON of a curl example (a JSON string: escapes decoded with json.loads).
QUERY = re.compile(r'"query":\s*"((?:[^"\\]|\\.)*)"')


def documents() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for match in QUERY.finditer(page.read_text(encoding="utf-8")):
            found.append((f"{page.name}:{match.group(1)[:60]}", json.loads(f'"{match.group(1)}"')))
    return found


DOCUMENTS = documents()


def test_the_guides_have_examples():
    assert len(DOCUMENTS) > 40


@pytest.mark.parametrize(("where", "document"), DOCUMENTS, ids=[d[0] for d in DOCUMENTS])
def test_each_example_is_valid(where, document):
    schema = build_schema()._schema
    assert validate(schema, parse(document)) == [], where
