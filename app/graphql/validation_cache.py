"""Validation results remembered by query text.

strawberry's ValidationCache keys its cache by the parsed document, and graphql-core hashes a
document by walking every node of it on every lookup: a cost that grows with the query and that
every request paid (76 node hashes for a partner's cardStatus query). The same text always parses
to the same document, and one schema
always validates with the same rules, so the text is key enough; one cache per schema (the rules
come from its settings).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from cachetools import LRUCache
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

from app.graphql.trusted_documents import TrustedDocuments


class ValidationResults:
    """The validation errors of recently seen query texts (an empty list for a valid query)."""

    def __init__(self, size: int) -> None:
        self._errors: LRUCache[str, list[GraphQLError]] = LRUCache(maxsize=size)
        self._lock = threading.Lock()  # an LRU lookup reorders entries

    def get(self, query: str) -> list[GraphQLError] | None:
        with self._lock:
            return self._errors.get(query)

    def put(self, query: str, errors: list[GraphQLError]) -> None:
        with self._lock:
            self._errors[query] = errors


class QueryValidationCache(SchemaExtension):
    """Validates a query text the first time it is seen; later requests reuse the verdict."""

    def __init__(self, results: ValidationResults, trusted: TrustedDocuments) -> None:
        super().__init__()
        self.results, self.trusted = results, trusted

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if self.trusted.by_text(context.query) is not None:  # validated when it was registered
            context.pre_execution_errors = []
            yield
            return
        errors = self.results.get(context.query) if context.query else None
        if errors is None:
            errors = validate_document(
                context.schema._schema, context.graphql_document, context.validation_rules
            )
            if context.query:
                self.results.put(context.query, errors)
        context.pre_execution_errors = errors
        yield
