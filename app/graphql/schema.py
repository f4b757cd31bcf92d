"""The strawberry schema; `schema.graphql` at the project root is generated from it."""

from __future__ import annotations

import strawberry
from strawberry.extensions import QueryDepthLimiter
from strawberry.schema.config import StrawberryConfig

from app.graphql.errors import CodedMaskErrors
from app.graphql.queries import Query


def build_schema(max_depth: int = 12) -> strawberry.Schema:
    # Extensions are given as factories so that no state is shared between requests.
    return strawberry.Schema(
        query=Query,
        config=StrawberryConfig(auto_camel_case=True),
        extensions=[lambda: QueryDepthLimiter(max_depth=max_depth), CodedMaskErrors],
    )


def schema_sdl() -> str:
    return build_schema().as_str() + "\n"
