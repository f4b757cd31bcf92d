"""The app the partner benchmark serves: the real app plus one plain Starlette JSON endpoint that
does the same work as `cardStatus` (key check, rate check, lookup, decision, audit write), so the
benchmark can show what the GraphQL layer itself costs. Benchmark-only: not part of the product."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app.ops.cards import services as card_services
from app.ops.cards.audit import CallInfo
from app.ops.cards.lookup import Presented
from app.ops.errors import OpsError
from app.ops.partner_keys.keys import authenticate_partner
from app.web import create_app


def create_bench_app():
    app = create_app()
    business, cards, limiter = app.state.business, app.state.cards, app.state.limiter

    async def plain_card_status(request: Request) -> JSONResponse:
        body = await request.json()
        try:
            caller = await authenticate_partner(cards.reader, request.headers.get("x-api-key"))
            await limiter.check_call(caller)
            view = await card_services.card_status(
                cards,
                business,
                CallInfo(caller, None),
                Presented.parse(body["idNumber"], card_number=body["cardNumber"]),
                "info_inquiry",
            )
        except OpsError as err:
            return JSONResponse({"error": err.code}, status_code=403)
        return JSONResponse({"status": view.status, "idNumberMasked": view.id_number_masked})

    app.router.routes.append(Route("/plain/card-status", plain_card_status, methods=["POST"]))
    return app
