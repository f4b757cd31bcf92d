"""Names a GraphQL request for the metrics: its first root field (`cardStatus`, `grantService`), which
the schema bounds, unlike the operation name a client chooses. A request that fails before execution
(syntax, validation, limits) keeps the label `invalid`."""

from __future__ import annotations

from collections.abc import Iterator

from graphql import FieldNode, get_operation_ast
from strawberry.extensions import SchemaExtension

SCOPE_KEY = "ssc.operation"
INVALID = "invalid"


def operation_of(scope: dict) -> str:
    return scope.get(SCOPE_KEY, INVALID)


class OperationLabel(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        operation = get_operation_ast(context.graphql_document, context.operation_name)
        first = next((s for s in operation.selection_set.selections if isinstance(s, FieldNode)), None)
        request = getattr(context.context, "request", None)
        if first is not None and request is not None:
            request.scope[SCOPE_KEY] = first.name.value
        yield
