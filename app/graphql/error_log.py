"""What the server log says about a request's errors: never the document, never the variables.

A refused call (a coded error: BAD_INPUT, FORBIDDEN, NOT_FOUND, ...) is not a fault of the server:
one line at INFO with the code, the field's path, the operation name and the request id. An
unexpected error keeps its traceback at ERROR, scrubbed of every run of six or more digits: a
partner may write an ID number, a bank card number or a PIN inline in the query text, and a
GraphQLError's text, an exception message or a traceback line may quote it (DESIGN.md §6).
"""

from __future__ import annotations

import logging
import re
import traceback

from graphql import GraphQLError
from strawberry.types import ExecutionContext

from app.graphql.errors import coded_extensions
from app.store.unavailable import database_unavailable

log = logging.getLogger("ssc.graphql")

MAX_NAME = 64
# ID numbers (18 characters, the last may be X), bank card numbers (12-19 digits) and PINs (6 digits).
_NUMBERS = re.compile(r"\d{6,}[0-9Xx]?")


def scrub(text: str) -> str:
    return _NUMBERS.sub("[number removed]", text)


def _where(error: GraphQLError) -> str:
    return ".".join(str(p) for p in error.path) if error.path else "-"


def log_errors(errors: list[GraphQLError], execution_context: ExecutionContext | None) -> None:
    context = getattr(execution_context, "context", None)
    request_id = getattr(context, "request_id", None) or "-"
    operation = getattr(execution_context, "operation_name", None) or "-"
    operation = scrub(operation[:MAX_NAME])
    for error in errors:
        original = error.original_error
        extensions = coded_extensions(error)
        if extensions is not None:
            log.info(
                "refused %s: %s (operation %s, request %s)",
                _where(error),
                extensions["code"],
                operation,
                request_id,
            )
            continue
        if database_unavailable(original):
            log.warning(
                "database unavailable in %s (operation %s, request %s): %s",
                _where(error),
                operation,
                request_id,
                type(original).__name__,
            )
            continue
        trace = "".join(traceback.format_exception(original)) if original is not None else error.message
        log.error(
            "unexpected error in %s (operation %s, request %s)\n%s",
            _where(error),
            operation,
            request_id,
            scrub(trace),
        )
