"""What a GraphQL request's body holds, looked at before strawberry reads it: text no field takes
(U+0000), and the common shape of a partner's call of a trusted document, which is answered from its
plan without strawberry's HTTP handling (app/graphql/compiled.py)."""

from __future__ import annotations

import re
from typing import Any

import orjson
from starlette.requests import Request

from app.graphql.compiled import CompiledOperation
from app.graphql.limits import DECODED_BODY
from app.graphql.trusted_documents import TrustedDocuments

# A GraphQL string literal's escape for U+0000 (\u0000 or \u{0}): see `holds_nul`.
NUL_ESCAPE = re.compile(r"\\u(?:0000|\{0+\})")
NUL_MESSAGE = "text may not contain the NUL character (U+0000)"
# The body was not decoded before (no RequestSizeLimit in front, or a body that is no JSON).
_UNREAD = object()


def holds_nul(value: object) -> bool:
    """Whether a variable's value holds U+0000 anywhere. No field of the platform takes it, and
    PostgreSQL refuses it in any text, even only compared (the fuzzer's INTERNAL in createPartnerKey):
    refused at the door, for every field at once."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(holds_nul(k) or holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(holds_nul(v) for v in value)
    return False


async def planned_call(
    request: Request, trusted: TrustedDocuments
) -> tuple[CompiledOperation, dict[str, Any] | None] | None:
    """The plan and the variables of a request in the shape partner systems send — a POST of
    `application/json` naming a trusted document that has a plan, by its hash or by its exact text,
    with variables (an object) free of U+0000 — or None for anything else, which strawberry handles,
    refusals included. Strawberry's handling of the request (content negotiation, the request
    object, the sub-response) costs a cardStatus call about a tenth of its time in the server."""
    if request.method != "POST" or request.headers.get("content-type") != "application/json":
        return None
    accept = request.headers.get("accept", "")
    if "multipart" in accept or "event-stream" in accept:  # a streaming transport: strawberry's
        return None
    data = request.scope.get(DECODED_BODY, _UNREAD)
    if data is _UNREAD:
        try:
            data = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return None
    if not isinstance(data, dict):
        return None
    query, variables, extensions = data.get("query"), data.get("variables"), data.get("extensions")
    if not isinstance(variables, dict | None) or not isinstance(extensions, dict | None):
        return None
    persisted = (extensions or {}).get("persistedQuery")
    if persisted is None:
        found = trusted.by_text(query) if isinstance(query, str) else None
    else:
        sha256 = persisted.get("sha256Hash") if isinstance(persisted, dict) else None
        found = trusted.by_hash(sha256) if isinstance(sha256, str) else None
        if found is not None and query is not None and query != found.text:
            return None
    compiled = found.plan_for(data.get("operationName")) if found is not None else None
    if compiled is None or holds_nul(variables):
        return None
    return compiled, variables
