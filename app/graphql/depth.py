"""How deep a query may nest, introspection included.

strawberry's QueryDepthLimiter leaves out every field whose name starts with "__" and all below it,
so `{ __type(name: "Query") { ofType { ofType { … } } } }` fifty levels deep went through (in
development, where introspection is on, without credentials). Here every field counts. A path
through an introspection field may go as deep as the standard introspection query does (what an
explorer such as GraphiQL sends, computed from graphql-core's own text), and no deeper; any other
path, `graphql_max_depth`. The depth of a field with a selection set is one more than its deepest
child; a leaf adds nothing (strawberry's measure, so the setting keeps its meaning).
"""

from __future__ import annotations

from functools import cache

from graphql import GraphQLError, get_introspection_query, parse
from graphql.language import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    Node,
    OperationDefinitionNode,
)
from graphql.validation import ValidationRule


def _depths(node: Node, fragments, seen: frozenset[str] = frozenset()) -> tuple[int, int]:
    """(deepest path without an introspection field, deepest path through one) below `node`."""
    if isinstance(node, FieldNode):
        if not node.selection_set:
            return 0, 0
        plain, through = _deepest(node.selection_set.selections, fragments, seen)
        if node.name.value.startswith("__"):
            return 0, 1 + max(plain, through)
        return 1 + plain, (1 + through if through else 0)
    if isinstance(node, FragmentSpreadNode):
        name = node.name.value
        fragment = fragments(name)
        if name in seen or fragment is None:  # a cycle or an unknown fragment: other rules report it
            return 0, 0
        return _deepest(fragment.selection_set.selections, fragments, seen | {name})
    return _deepest(node.selection_set.selections, fragments, seen)


def _deepest(selections, fragments, seen: frozenset[str]) -> tuple[int, int]:
    found = [_depths(selection, fragments, seen) for selection in selections]
    return max((p for p, _ in found), default=0), max((t for _, t in found), default=0)


@cache
def introspection_depth() -> int:
    """The depth of the standard introspection query (with descriptions and all it may ask)."""
    document: DocumentNode = parse(
        get_introspection_query(
            descriptions=True,
            specified_by_url=True,
            directive_is_repeatable=True,
            schema_description=True,
            input_value_deprecation=True,
        )
    )
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    operation = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
    return _deepest(operation.selection_set.selections, fragments.get, frozenset())[1]


def depth_rule(max_depth: int) -> type[ValidationRule]:
    """A validation rule refusing an operation deeper than `max_depth`, or than the standard
    introspection query along a path through introspection."""
    introspection_limit = max(max_depth, introspection_depth())

    class MaxDepth(ValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_args) -> None:
            selections = node.selection_set.selections
            plain, through = _deepest(selections, self.context.get_fragment, frozenset())
            if plain > max_depth:
                limit = max_depth
            elif through > introspection_limit:
                limit = introspection_limit
            else:
                return
            name = node.name.value if node.name else "anonymous"
            self.report_error(GraphQLError(f"'{name}' exceeds maximum operation depth of {limit}", [node]))

    return MaxDepth
