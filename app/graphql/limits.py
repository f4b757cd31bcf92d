"""Limits on what a request may ask for, enforced before any resolver runs (DESIGN.md §7)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import lru_cache

import orjson
from graphql import DocumentNode, parse
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    SchemaExtension,
)

from app.graphql.depth import depth_rule
from app.graphql.trusted_documents import TrustedDocuments
from app.graphql.validation_cache import QueryValidationCache, ValidationResults
from app.settings import Settings

CACHE_SIZE = 256
# Where RequestSizeLimit leaves the body it decoded, for the next reader (request_shape.planned_call).
DECODED_BODY = "ssc.decoded_body"


def validation_rules(settings: Settings) -> list:
    """The rules every document meets besides the specification's: depth, aliases, and no
    introspection in production."""
    rules = [
        depth_rule(settings.graphql_max_depth),
        *MaxAliasesLimiter(max_alias_count=settings.graphql_max_aliases).validation_rules,
    ]
    if settings.env == "production":
        rules += DisableIntrospection().validation_rules
    return rules


def limit_extensions(settings: Settings, trusted: TrustedDocuments) -> list[Callable]:
    """Factories, not instances: strawberry builds fresh extensions for every request.

    The depth rule and MaxAliasesLimiter's rule are classes made for their limits; made per request,
    the rules would differ every time. They are made once here, so a query text always meets the
    same rules and its validation can be remembered by its text. A trusted document was parsed and
    validated when it was registered: it is neither parsed nor validated again.
    """
    rules = validation_rules(settings)
    validated = ValidationResults(CACHE_SIZE)
    parsed = lru_cache(maxsize=CACHE_SIZE)(parse)
    return [
        lambda: MaxTokensLimiter(max_token_count=settings.graphql_max_tokens),
        lambda: DocumentParse(trusted, parsed),
        lambda: AddValidationRules(rules),
        lambda: QueryValidationCache(validated, trusted),
    ]


class DocumentParse(SchemaExtension):
    """The parsed document: a trusted document's, else the text's, parsed once while it is recent."""

    def __init__(self, trusted: TrustedDocuments, parsed: Callable[..., DocumentNode]) -> None:
        super().__init__()
        self.trusted, self.parsed = trusted, parsed

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        found = self.trusted.by_text(context.query)
        context.graphql_document = (
            found.document if found else self.parsed(context.query, **context.parse_options)
        )
        yield


def _refusal(message: str, status: int) -> JSONResponse:
    return JSONResponse(
        {"data": None, "errors": [{"message": message, "extensions": {"code": "BAD_INPUT"}}]},
        status_code=status,
    )


class RequestSizeLimit:
    """Refuses an oversized body, or a query document longer than the limit, before parsing it.

    The token limit alone cannot catch a document that is one huge string literal.
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_document_bytes: int) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.max_document = max_document_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_body:
                await _refusal(f"request body over {self.max_body} bytes", 413)(scope, receive, send)
                return
        if b"json" in dict(scope["headers"]).get(b"content-type", b""):
            try:
                decoded = orjson.loads(body) if body else None
            except orjson.JSONDecodeError:
                decoded = None  # strawberry reports malformed bodies itself
            else:
                scope[DECODED_BODY] = decoded
            document = decoded.get("query") if isinstance(decoded, dict) else None
            if isinstance(document, str) and len(document.encode()) > self.max_document:
                await _refusal(f"query document over {self.max_document} bytes", 413)(scope, receive, send)
                return
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)
