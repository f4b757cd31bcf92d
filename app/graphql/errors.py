"""Coded API errors (DESIGN.md §7) and the masking of everything else.

Use cases raise `OpsError` (code + extensions) or `DomainError` (bad input); both reach the client
with `extensions.code`. A database outage is `UNAVAILABLE` (retry). Anything else is a bug: the
client sees `INTERNAL` and the request id, the log gets the trace (app/graphql/error_log.py).
"""

from __future__ import annotations

import re

from graphql import GraphQLError
from strawberry.extensions import MaskErrors

from app.domain.errors import DomainError
from app.ops.errors import OpsError
from app.store.unavailable import database_unavailable

UNAVAILABLE_MESSAGE = "the database cannot be reached just now; retry in a moment"
INTERNAL_MESSAGE = "Internal server error"
# The domain names what it refuses by its own words; the caller sent the API's argument names.
_API_FIELDS = {"tenant_path": "tenant", "region_code": "tenant", "pin": "newPin"}


def api_field(name: str | None) -> str | None:
    """`id_number` -> `idNumber`: the input field as the caller named it."""
    if name is None:
        return None
    if name in _API_FIELDS:
        return _API_FIELDS[name]
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def visible_extensions(original: BaseException) -> dict | None:
    if isinstance(original, OpsError):
        return {"code": original.code, **{k: v for k, v in original.extensions.items() if v is not None}}
    if isinstance(original, DomainError):
        return {"code": "BAD_INPUT", "field": api_field(original.field), "reason": original.code}
    return None


# graphql-core names the variable, and the input field inside it, of a value that does not coerce
# only in its message: "Variable '$i' has invalid value at .validFrom: …" (or at .selector.kind,
# at .services[2]; a variable that is itself the value: "Variable '$at' has invalid value: …").
_COERCION = re.compile(r"Variable '\$(\w+)' has invalid value(?: at \.([\w.\[\]]+))?:")


def _input_field(message: str) -> str | None:
    """The input field a coercion error is about, as the caller named it (`$at` for a variable)."""
    found = _COERCION.search(message)
    if found is None:
        return None
    if found.group(2) is None:
        return f"${found.group(1)}"
    return re.sub(r"\[\d+\]", "", found.group(2)).rsplit(".", 1)[-1]


def coded_extensions(error: GraphQLError) -> dict | None:
    """The coded extensions an error reaches the client with, or None when it is a bug (INTERNAL)."""
    original = error.original_error
    # No original error (parse, validation) or a variable that does not coerce to its type (raised
    # before any resolver runs, without a path): the error is about the request, safe to show. An
    # exception without a path otherwise is a bug, e.g. one raised by a subscription's stream.
    coercion = error.path is None and _COERCION.search(error.message) is not None
    if original is None or (coercion and not visible_extensions(original)):
        field = _input_field(error.message)
        return {"code": "BAD_INPUT", **({"field": field} if field else {})}
    return visible_extensions(original)


def client_error(error: GraphQLError, request_id: str | None) -> GraphQLError:
    """What the client sees of an error: the error itself with its code added to its extensions, or,
    for a bug or an outage, the error masked."""
    extensions = coded_extensions(error)
    if extensions is None:
        return masked(error, request_id)
    if error.original_error is not None and visible_extensions(error.original_error):
        error.extensions = {**(error.extensions or {}), **extensions}
    else:  # a request error keeps what graphql-core or a limit already said of it
        error.extensions = {**extensions, **(error.extensions or {})}
    return error


def masked(error: GraphQLError, request_id: str | None) -> GraphQLError:
    """What the client sees of an error that is not coded: UNAVAILABLE for an outage, else
    INTERNAL with the request id, at the same place in the document and the answer."""
    if database_unavailable(error.original_error):  # an outage, not a bug: the caller retries
        message, extensions = UNAVAILABLE_MESSAGE, {"code": "UNAVAILABLE", "retryAfter": 1}
    else:
        message, extensions = INTERNAL_MESSAGE, {"code": "INTERNAL"}
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions={**extensions, "requestId": request_id},
    )


def client_errors(errors: list[GraphQLError], request_id: str | None) -> list[GraphQLError]:
    """The errors as the client sees them (what CodedMaskErrors does to a result's errors)."""
    return [client_error(error, request_id) for error in errors]


class CodedMaskErrors(MaskErrors):
    """Lets coded errors through with their extensions and masks the rest as INTERNAL. Every error
    goes through `anonymise_error`, which decides: the one place strawberry hands each error over."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=lambda _: True, error_message=INTERNAL_MESSAGE)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        return client_error(error, getattr(self.execution_context.context, "request_id", None))
