"""Answers for requests refused before GraphQL runs, in the shape of every GraphQL error."""

from __future__ import annotations

import orjson
from starlette.responses import Response


def error_response(message: str, code: str, status: int = 200, **extensions: object) -> Response:
    body = {"data": None, "errors": [{"message": message, "extensions": {"code": code, **extensions}}]}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")
