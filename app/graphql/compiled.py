"""Trusted documents run from a plan made at start-up, not by the generic executor.

A registered partner document never changes: its root field, its arguments and the fields it selects
are known when the server starts. The generic path still works them out on every call — strawberry's
extension hooks, graphql-core's execution context and field collection, and a resolve call with its
own info object for each of a card's eleven fields — which cost a cardStatus call more than its use
case does (BENCHMARKS.md, issue 16). A document that can be is compiled once into a plan: its
variables are coerced and its root field's arguments read by graphql-core's own functions (variables
that are all texts, given as texts, more directly: `CompiledOperation._given_texts`), the root field
is resolved by strawberry's own resolver (the same argument conversion, the same use case), and the
answer is built by walking the plan. Errors are located, logged and masked as on the generic path
(app/graphql/errors.py, app/graphql/error_log.py); tests/web/test_compiled_documents.py sends every
kind of call both ways and compares the answers byte for byte.

What a plan does not express stays on the generic path: directives, a response key selected twice,
arguments or resolvers below the root field, abstract types, subscriptions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLSchema,
    GraphQLString,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    StringValueNode,
    Undefined,
    located_error,
)
from graphql.execution.get_variable_signature import GraphQLVariableSignature, get_variable_signature
from graphql.execution.values import (
    VariableValues,
    VariableValueSource,
    get_argument_values,
    get_variable_values,
)
from graphql.pyutils import Path, is_awaitable
from graphql.type.definition import GraphQLResolveInfoHelpers
from strawberry.types import ExecutionResult

from app.graphql.error_log import log_errors
from app.graphql.errors import client_errors
from app.graphql.operation_label import SCOPE_KEY

# strawberry keeps its own field beside each of graphql-core's (GraphQLCoreConverter.DEFINITION_BACKREF).
STRAWBERRY_FIELD = "strawberry-definition"

# value, its path in the answer, the errors recorded so far -> the value as the answer holds it; raises
# what graphql-core would raise.
Complete = Callable[[Any, Path, list[GraphQLError]], Any]


class NotCompiled(Exception):
    """The document needs something a plan does not express: it runs on the generic path."""


async def _gather(values: Sequence[Any]) -> list[Any]:
    return list(await asyncio.gather(*values))


def _untracked(_: Sequence[Any]) -> None:
    raise NotImplementedError("a compiled document's resolver cannot leave work running after it")


# What graphql-core offers resolvers for asynchronous work of their own; none of the platform's uses it.
_HELPERS = GraphQLResolveInfoHelpers(gather=_gather, track=_untracked)


@dataclass(frozen=True)
class _LogContext:
    """What app/graphql/error_log.py reads of strawberry's execution context."""

    context: Any
    operation_name: str


def _fields(
    selections: SelectionSetNode, parent: GraphQLObjectType, fragments: dict[str, FragmentDefinitionNode]
) -> list[FieldNode]:
    """The fields a selection set selects on `parent`, fragments spread in place, in order."""
    found: list[FieldNode] = []
    for selection in selections.selections:
        if selection.directives:
            raise NotCompiled("directives")
        if isinstance(selection, FieldNode):
            found.append(selection)
            continue
        if isinstance(selection, FragmentSpreadNode):
            fragment = fragments[selection.name.value]
            condition, inner = fragment.type_condition, fragment.selection_set
            if fragment.directives:
                raise NotCompiled("directives")
        elif isinstance(selection, InlineFragmentNode):
            condition, inner = selection.type_condition, selection.selection_set
        else:
            raise NotCompiled(type(selection).__name__)
        if condition is not None and condition.name.value != parent.name:
            raise NotCompiled("a fragment on another type")
        found += _fields(inner, parent, fragments)
    keys = [(f.alias or f.name).value for f in found]
    if len(set(keys)) != len(keys):
        raise NotCompiled("a response key selected twice")
    return found


def _completer(kind: GraphQLOutputType, nodes: list[FieldNode], parent: str, fragments: dict) -> Complete:
    """How a value of type `kind` of the field `nodes` select becomes its place in the answer
    (graphql-core's complete_value)."""
    name = nodes[0].name.value
    if isinstance(kind, GraphQLNonNull):
        inner = _completer(kind.of_type, nodes, parent, fragments)

        def complete_non_null(value: Any, path: Path, errors: list[GraphQLError]) -> Any:
            completed = inner(value, path, errors)
            if completed is None:
                raise TypeError(f"Cannot return null for non-nullable field {parent}.{name}.")
            return completed

        return complete_non_null
    if isinstance(kind, GraphQLList):
        item = _completer(kind.of_type, nodes, parent, fragments)
        item_non_null = isinstance(kind.of_type, GraphQLNonNull)

        def complete_list(value: Any, path: Path, errors: list[GraphQLError]) -> Any:
            if value is None:
                return None
            if isinstance(value, str | bytes | dict) or not hasattr(value, "__iter__"):
                raise GraphQLError(f"Expected Iterable, but did not find one for field '{parent}.{name}'.")
            return [
                _completed(item, element, path.add_key(i), errors, item_non_null, nodes)
                for i, element in enumerate(value)
            ]

        return complete_list
    if isinstance(kind, GraphQLLeafType):

        def complete_leaf(value: Any, _path: Path, _errors: list[GraphQLError]) -> Any:
            if value is None:
                return None
            serialized = kind.serialize(value)
            if serialized is None:
                raise TypeError(f"Expected `{kind}.serialize({value!r})` to return non-nullable value")
            return serialized

        return complete_leaf
    selections = nodes[0].selection_set
    if isinstance(kind, GraphQLObjectType) and kind.is_type_of is None and selections is not None:
        return _object_completer(kind, selections, fragments)
    raise NotCompiled(f"type {kind}")


@dataclass(frozen=True)
class _Field:
    key: str
    attribute: str | None  # None: __typename, answered from the type
    non_null: bool
    complete: Complete
    nodes: list[FieldNode]
    # A String: a str value is its own answer (what GraphQLString.serialize returns for it).
    text: bool = False


def _object_completer(kind: GraphQLObjectType, selections: SelectionSetNode, fragments: dict) -> Complete:
    plan: list[_Field] = []
    for node in _fields(selections, kind, fragments):
        key = (node.alias or node.name).value
        if node.name.value == "__typename":
            plan.append(_Field(key, None, True, lambda _value, _path, _errors: kind.name, [node]))
            continue
        field = kind.fields[node.name.value]
        # A plain attribute: strawberry resolves it by getattr, with no resolver of ours to call.
        if node.arguments or not getattr(field.resolve, "_is_default", False):
            raise NotCompiled(f"{kind.name}.{node.name.value} has a resolver")
        attribute = field.extensions[STRAWBERRY_FIELD].python_name
        complete = _completer(field.type, [node], kind.name, fragments)
        non_null = isinstance(field.type, GraphQLNonNull)
        text = (field.type.of_type if non_null else field.type) is GraphQLString
        plan.append(_Field(key, attribute, non_null, complete, [node], text))

    def complete_object(value: Any, path: Path, errors: list[GraphQLError]) -> Any:
        if value is None:
            return None
        answer = {}
        for field in plan:
            found = value if field.attribute is None else getattr(value, field.attribute)
            if field.text and type(found) is str:
                answer[field.key] = found
                continue
            answer[field.key] = _completed(
                field.complete,
                found,
                path.add_key(field.key, kind.name),
                errors,
                field.non_null,
                field.nodes,
            )
        return answer

    return complete_object


def _completed(
    complete: Complete,
    value: Any,
    path: Path,
    errors: list[GraphQLError],
    non_null: bool,
    nodes: list[FieldNode],
) -> Any:
    """The completed value, or None with the error recorded where graphql-core records it: a null
    in a non-null place goes up to the nearest place that may be null."""
    try:
        if isinstance(value, Exception):  # a resolver may return an error instead of raising it
            raise value
        return complete(value, path, errors)
    except Exception as raw:
        error = located_error(raw, nodes, path.as_list())
        if non_null:
            raise error from None
        errors.append(error)
        return None


# A variable of type String or String!: its name, graphql-core's signature of it, its default.
_TextVariable = tuple[str, GraphQLVariableSignature, Any]


def _text_variables(
    schema: GraphQLSchema, operation: OperationDefinitionNode
) -> tuple[_TextVariable, ...] | None:
    """The operation's variables when each is a String (with a default given as a string, if any),
    else None."""
    found = []
    for node in operation.variable_definitions or ():
        signature = get_variable_signature(schema, node)
        if isinstance(signature, GraphQLError):
            return None
        kind = signature.type.of_type if isinstance(signature.type, GraphQLNonNull) else signature.type
        if kind is not GraphQLString:
            return None
        default = node.default_value
        if default is not None and not isinstance(default, StringValueNode):
            return None
        found.append((signature.name, signature, Undefined if default is None else default.value))
    return tuple(found)


@dataclass(frozen=True)
class CompiledOperation:
    name: str
    operation: OperationDefinitionNode
    fragments: dict[str, FragmentDefinitionNode]
    root: GraphQLObjectType
    node: FieldNode
    field: GraphQLField
    non_null: bool
    key: str
    complete: Complete
    # Its variables when all are texts: coerced without graphql-core when each is given as a text.
    texts: tuple[_TextVariable, ...] | None

    def _given_texts(self, variables: dict) -> VariableValues | None:
        """What graphql-core's get_variable_values returns when each variable is given as a text or
        left to its default; None otherwise (absent without a default, null, not a text), for
        graphql-core to coerce or refuse. cardStatus's three variables cost ~25 µs there."""
        sources, coerced = {}, {}
        for name, signature, default in self.texts:
            value = variables.get(name, Undefined)
            if type(value) is str:
                sources[name], coerced[name] = VariableValueSource(signature, value), value
            elif value is Undefined and default is not Undefined:
                sources[name], coerced[name] = VariableValueSource(signature), default
            else:
                return None
        return VariableValues(sources, coerced)

    async def execute(self, schema: GraphQLSchema, context: Any, variables: dict | None) -> ExecutionResult:
        """What the generic path answers for this document, these variables and this context."""
        request = getattr(context, "request", None)
        if request is not None:  # app/graphql/operation_label.py, as on the generic path
            request.scope[SCOPE_KEY] = self.node.name.value
        coerced = self._given_texts(variables or {}) if self.texts is not None else None
        if coerced is None:
            coerced = get_variable_values(schema, self.operation.variable_definitions or (), variables or {})
        if isinstance(coerced, list):
            return self._failed(None, coerced, context)
        field, non_null = self.field, self.non_null
        path = Path(None, self.key, self.root.name)
        info = GraphQLResolveInfo(
            self.node.name.value,
            [self.node],
            field.type,
            self.root,
            path,
            schema,
            self.fragments,
            None,
            self.operation,
            coerced,
            context,
            is_awaitable,
            None,
            _HELPERS,
        )
        errors: list[GraphQLError] = []
        try:
            value = field.resolve(None, info, **get_argument_values(field, self.node, coerced))
            if is_awaitable(value):
                value = await value
            data = {self.key: _completed(self.complete, value, path, errors, non_null, [self.node])}
        except Exception as raw:  # the root field failed, or a null reached it from below
            error = located_error(raw, [self.node], path.as_list())
            return self._failed(None if non_null else {self.key: None}, [*errors, error], context)
        if errors:
            return self._failed(data, errors, context)
        return ExecutionResult(data=data, errors=None)

    def _failed(self, data: dict | None, errors: list[GraphQLError], context: Any) -> ExecutionResult:
        # Logged before masking, as strawberry's Schema.process_errors sees them on the generic path.
        log_errors(errors, _LogContext(context, self.name))
        return ExecutionResult(data=data, errors=client_errors(errors, getattr(context, "request_id", None)))


def compile_operation(schema: GraphQLSchema, document: DocumentNode) -> CompiledOperation | None:
    """The plan of a trusted document (one named operation and its fragments), or None when it
    needs the generic path."""
    (operation,) = (d for d in document.definitions if isinstance(d, OperationDefinitionNode))
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    root = {OperationType.QUERY: schema.query_type, OperationType.MUTATION: schema.mutation_type}.get(
        operation.operation
    )
    try:
        if root is None or operation.directives:
            raise NotCompiled("a subscription, or directives")
        if any(v.directives for v in operation.variable_definitions or ()):
            raise NotCompiled("directives")
        (node,) = _fields(operation.selection_set, root, fragments)
        if node.name.value.startswith("__"):
            raise NotCompiled("introspection")
        field = root.fields[node.name.value]
        complete = _completer(field.type, [node], root.name, fragments)
    except (NotCompiled, ValueError):  # ValueError: not exactly one root field
        return None
    return CompiledOperation(
        operation.name.value,
        operation,
        fragments,
        root,
        node,
        field,
        isinstance(field.type, GraphQLNonNull),
        (node.alias or node.name).value,
        complete,
        _text_variables(schema, operation),
    )
