"""Coded API errors (DESIGN.md §7) and the masking of everything else."""

from __future__ import annotations

import logging

from graphql import GraphQLError
from strawberry.extensions import MaskErrors

from app.domain.errors import DomainError

log = logging.getLogger("ssc.graphql")


class ApiError(Exception):
    """An error the caller may see: `code` goes to `extensions.code`."""

    def __init__(self, code: str, message: str, **extensions: object) -> None:
        super().__init__(message)
        self.extensions = {"code": code, **extensions}


def bad_input(err: DomainError) -> ApiError:
    return ApiError("BAD_INPUT", err.message, field=err.field, reason=err.code)


def _is_visible(error: GraphQLError) -> bool:
    original = error.original_error
    if original is None:  # parse and validation errors: about the query, safe to show
        return True
    if isinstance(original, ApiError):
        error.extensions = {**(error.extensions or {}), **original.extensions}
        return True
    log.error("unexpected error in %s", error.path, exc_info=original)
    return False


class CodedMaskErrors(MaskErrors):
    """Lets coded errors through with their extensions and masks the rest as INTERNAL."""

    def __init__(self) -> None:
        super().__init__(
            should_mask_error=lambda e: not _is_visible(e), error_message="Internal server error"
        )

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        return GraphQLError(
            self.error_message,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions={"code": "INTERNAL"},
        )
