"""Coded API errors (DESIGN.md §7) and the masking of everything else.

Use cases raise `OpsError` (code + extensions) or `DomainError` (bad input); both reach the client
with `extensions.code`. Anything else is a bug: the client sees `INTERNAL` and the request id, the
log gets the trace.
"""

from __future__ import annotations

import logging

from graphql import GraphQLError
from strawberry.extensions import MaskErrors

from app.domain.errors import DomainError
from app.ops.errors import OpsError

log = logging.getLogger("ssc.graphql")


def _visible_extensions(original: BaseException) -> dict | None:
    if isinstance(original, OpsError):
        return {"code": original.code, **{k: v for k, v in original.extensions.items() if v is not None}}
    if isinstance(original, DomainError):
        return {"code": "BAD_INPUT", "field": original.field, "reason": original.code}
    return None


class CodedMaskErrors(MaskErrors):
    """Lets coded errors through with their extensions and masks the rest as INTERNAL."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=self._mask, error_message="Internal server error")

    def _mask(self, error: GraphQLError) -> bool:
        original = error.original_error
        # No original error (parse, validation) or no path (variables that do not coerce to their
        # types, raised before any resolver runs): the error is about the request, safe to show.
        if original is None or (error.path is None and not _visible_extensions(original)):
            error.extensions = {"code": "BAD_INPUT", **(error.extensions or {})}
            return False
        extensions = _visible_extensions(original)
        if extensions is not None:
            error.extensions = {**(error.extensions or {}), **extensions}
            return False
        return True

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        context = self.execution_context.context
        request_id = getattr(context, "request_id", None)
        log.error(
            "unexpected error in %s (request %s)", error.path, request_id, exc_info=error.original_error
        )
        return GraphQLError(
            self.error_message,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions={"code": "INTERNAL", "requestId": request_id},
        )
