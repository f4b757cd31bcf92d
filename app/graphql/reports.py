"""The report downloads beside the GraphQL endpoint (app/downloads.py), for a bearer token as for
GraphQL; a refusal is the API's error shape with its code (401, 403, 400, 404)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from app import downloads
from app.domain.errors import DomainError
from app.graphql.context import bearer_token
from app.graphql.errors import visible_extensions
from app.graphql.http_errors import error_response
from app.ops.auth import Actor, authenticate
from app.ops.errors import OpsError
from app.settings import Settings

STATUS = {"UNAUTHENTICATED": 401, "FORBIDDEN": 403, "NOT_FOUND": 404}

Download = Callable[[Request, Actor, Settings], Awaitable[Response]]


def report_routes(settings: Settings):
    """The two download endpoints, as Starlette handlers."""

    def endpoint(download: Download):
        async def answer(request: Request) -> Response:
            try:
                async with request.app.state.sessions() as session:
                    actor = await authenticate(session, bearer_token(request))
                return await download(request, actor, settings)
            except (OpsError, DomainError) as err:
                # The same code and extensions the GraphQL endpoint gives the same refusal.
                extensions = {k: v for k, v in (visible_extensions(err) or {}).items() if v is not None}
                code = extensions.pop("code")
                return error_response(err.message, code, STATUS.get(code, 400), **extensions)

        return answer

    return endpoint(downloads.permission_matrix), endpoint(downloads.audit_events)
