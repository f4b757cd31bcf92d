"""Whether a GraphQL answer has the shape its query asks of the schema: every key selected and no
other, no null where the schema says non-null, lists as lists, scalars of their type, enums among
their values. Written for the fuzz tests from the GraphQL specification (§6.4 "Value Completion"),
not from the server's code, so that it judges the server rather than repeats it."""

from __future__ import annotations

from datetime import datetime

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLEnumType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)


def _is_datetime(value: object) -> bool:
    try:
        return isinstance(value, str) and datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        return False


SCALARS = {
    "Int": lambda v: isinstance(v, int) and not isinstance(v, bool) and -(2**31) <= v < 2**31,
    "Float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "String": lambda v: isinstance(v, str),
    "ID": lambda v: isinstance(v, str),
    "Boolean": lambda v: isinstance(v, bool),
    "DateTime": _is_datetime,
    "JSON": lambda v: True,
}


class _Walk:
    def __init__(self, schema: GraphQLSchema, document: DocumentNode) -> None:
        self.schema = schema
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.problems: list[str] = []

    def fields(self, parent, selection_set: SelectionSetNode, certain: bool = True):
        """(response key, field definition, field node, whether the key must be there) of a selection
        set, fragments spread; a fragment on another type than the value's may select nothing."""
        for node in selection_set.selections:
            if isinstance(node, FieldNode):
                name = node.name.value
                definition = None if name == "__typename" else parent.fields[name]
                yield (node.alias or node.name).value, definition, node, certain
                continue
            fragment = node if isinstance(node, InlineFragmentNode) else self.fragments[node.name.value]
            condition = fragment.type_condition
            on = self.schema.get_type(condition.name.value) if condition else parent
            if (
                isinstance(parent, GraphQLObjectType)
                and isinstance(on, GraphQLObjectType)
                and on is not parent
            ):
                continue  # a fragment on another object type selects nothing of this one
            yield from self.fields(on, fragment.selection_set, certain and on is parent)

    def value(self, type_, value, path: str, node: FieldNode | None) -> None:
        if isinstance(type_, GraphQLNonNull):
            if value is None:
                self.problems.append(f"{path}: null for the non-null {type_}")
                return
            type_ = type_.of_type
        if value is None:
            return
        if isinstance(type_, GraphQLList):
            if not isinstance(value, list):
                self.problems.append(f"{path}: {type(value).__name__} for a list")
                return
            for i, item in enumerate(value):
                self.value(type_.of_type, item, f"{path}[{i}]", node)
            return
        if isinstance(type_, GraphQLScalarType):
            if not SCALARS.get(type_.name, lambda v: False)(value):
                self.problems.append(f"{path}: {value!r} is not a {type_.name}")
            return
        if isinstance(type_, GraphQLEnumType):
            if value not in type_.values:
                self.problems.append(f"{path}: {value!r} is not a {type_.name}")
            return
        if not isinstance(value, dict):
            self.problems.append(f"{path}: {type(value).__name__} for the object {type_.name}")
            return
        concrete = self.schema.get_type(value["__typename"]) if "__typename" in value else type_
        self.selection(concrete, node.selection_set, value, path)

    def selection(self, parent, selection_set: SelectionSetNode, value: dict, path: str) -> None:
        selected = list(self.fields(parent, selection_set))
        for extra in set(value) - {key for key, *_ in selected}:
            self.problems.append(f"{path}.{extra}: not selected")
        for key, definition, node, certain in selected:
            if key not in value:
                if certain:
                    self.problems.append(f"{path}.{key}: selected but missing")
            elif definition is None:
                if not isinstance(value[key], str):
                    self.problems.append(f"{path}.{key}: __typename is not a name")
            else:
                self.value(definition.type, value[key], f"{path}.{key}", node)


def shape_problems(schema: GraphQLSchema, document: DocumentNode, data: dict | None) -> list[str]:
    """What in `data` breaks the shape `document` asks of `schema` (empty: nothing)."""
    if data is None:
        return []
    operation = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
    root = schema.get_root_type(operation.operation)
    walk = _Walk(schema, document)
    walk.selection(root, operation.selection_set, data, "data")
    return walk.problems
