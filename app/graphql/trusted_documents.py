"""Trusted documents: the partner operations of partner_documents.graphql, registered at start-up by
the SHA-256 of their text.

Each operation becomes a document of its own (the operation and the fragments it uses, as graphql-core
prints them), parsed and validated once, against the schema, when the server starts: a broken
one stops the start, and a request running one is neither parsed nor validated again; one that can
be is compiled into a plan that runs without the generic executor (app/graphql/compiled.py). A partner sends
the hash in Apollo's persisted-query form, `"extensions": {"persistedQuery": {"version": 1,
"sha256Hash": "…"}}`, instead of the text; in production a partner key runs only these documents (by
hash or by their exact text), whatever else it sends is refused. An administrator's token is not
concerned: people's tools send documents of their own.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLSchema,
    OperationDefinitionNode,
    parse,
    print_ast,
    specified_rules,
    validate,
    visit,
)
from graphql.language import Visitor

from app.graphql.compiled import CompiledOperation, compile_operation

DOCUMENTS_FILE = Path(__file__).resolve().with_name("partner_documents.graphql")


@dataclass(frozen=True)
class TrustedDocument:
    name: str
    text: str
    sha256: str
    document: DocumentNode
    # Its plan (app/graphql/compiled.py), or None when it runs on the generic path.
    compiled: CompiledOperation | None

    def plan_for(self, operation_name: object) -> CompiledOperation | None:
        """Its plan, when it has one and the request names no other operation than it (a request
        naming another is refused the generic way)."""
        compiled = self.compiled
        return compiled if compiled is not None and operation_name in (None, compiled.name) else None


class InvalidTrustedDocument(ValueError):
    pass


class _Spreads(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def enter_fragment_spread(self, node: FragmentSpreadNode, *_) -> None:
        self.names.add(node.name.value)


def _fragments_used(node, fragments: dict[str, FragmentDefinitionNode]) -> list[FragmentDefinitionNode]:
    """The fragments `node` spreads, directly or through other fragments, in the file's order."""
    seen: set[str] = set()
    todo = [node]
    while todo:
        spreads = _Spreads()
        visit(todo.pop(), spreads)
        for name in spreads.names - seen:
            seen.add(name)
            todo.append(fragments[name])
    return [f for name, f in fragments.items() if name in seen]


class TrustedDocuments:
    """The registered documents, by hash and by text. Empty until `register` runs (after the schema is
    built: the documents are validated against it)."""

    def __init__(self) -> None:
        self._by_hash: dict[str, TrustedDocument] = {}
        self._by_text: dict[str, TrustedDocument] = {}

    def register(self, schema: GraphQLSchema, path: Path = DOCUMENTS_FILE) -> None:
        """Validated by the specification's rules alone: the limits on depth and aliases guard
        against documents of unknown origin, and these are the platform's own."""
        source = parse(path.read_text(encoding="utf-8"))
        fragments = {d.name.value: d for d in source.definitions if isinstance(d, FragmentDefinitionNode)}
        for operation in (d for d in source.definitions if isinstance(d, OperationDefinitionNode)):
            if operation.name is None:
                raise InvalidTrustedDocument(f"{path.name}: every partner operation has a name")
            text = print_ast(DocumentNode(definitions=(operation, *_fragments_used(operation, fragments))))
            document = parse(text)
            errors = validate(schema, document, specified_rules)
            if errors:
                raise InvalidTrustedDocument(f"{path.name}, {operation.name.value}: {errors[0].message}")
            found = TrustedDocument(
                operation.name.value,
                text,
                hashlib.sha256(text.encode()).hexdigest(),
                document,
                compile_operation(schema, document),
            )
            self._by_hash[found.sha256] = self._by_text[text] = found

    def by_hash(self, sha256: str) -> TrustedDocument | None:
        return self._by_hash.get(sha256)

    def by_text(self, text: str | None) -> TrustedDocument | None:
        return self._by_text.get(text) if text else None

    def __iter__(self):
        return iter(self._by_hash.values())
