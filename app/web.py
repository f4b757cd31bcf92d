"""The Starlette application: /graphql, the console, the report downloads, /healthz, /readyz and /metrics."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import re
import time
from datetime import timedelta
from pathlib import Path

import orjson
from cross_web import HTTPException
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult

from app import metrics
from app.authz.policy_state import BusinessPolicy
from app.authz.snapshot import PolicySnapshots
from app.authz.sync import PolicyTailer
from app.console import console_mount
from app.console.login import Console
from app.graphql.compiled import CompiledOperation
from app.graphql.context import Context
from app.graphql.errors import UNAVAILABLE_MESSAGE
from app.graphql.http_errors import error_response
from app.graphql.limits import RequestSizeLimit
from app.graphql.operation_label import operation_of
from app.graphql.reports import report_routes
from app.graphql.request_shape import NUL_ESCAPE, NUL_MESSAGE, holds_nul, planned_call
from app.graphql.revision_gate import revision_refusal
from app.graphql.schema import build_schema
from app.logs import RequestIds, request_id_from
from app.ops.cards.store import CardStore
from app.ops.compliance.checkpoints import Signer, checkpoint_timer
from app.ops.errors import OpsError
from app.ops.partner_keys.rate_limit import PartnerLimiter
from app.settings import Settings, get_settings, resolve_keys, resolve_signing_key
from app.store.audit_writer import AuditWriter
from app.store.crypto import field_cipher
from app.store.db import make_async_engine, make_session_factory
from app.store.point_reads import PointReader
from app.store.unavailable import database_unavailable

log = logging.getLogger("ssc.web")
EXPLORER_PAGE = (Path(__file__).resolve().parent / "graphql" / "explorer.html").read_text(encoding="utf-8")
# graphql-core's hint in validation and coercion errors: " Did you mean 'a', 'b', or 'c'?"
_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")
OUTCOME = "ssc.outcome"


class UntrustedDocument(Exception):
    MESSAGE = (
        "a partner key runs only the registered partner documents: send the document's sha256Hash "
        "(extensions.persistedQuery) or its exact text (docs/partner-api.md)"
    )


class GraphQLApp(GraphQL):
    def __init__(
        self,
        schema,
        cards: CardStore,
        business: BusinessPolicy,
        policy: PolicyTailer,
        limiter: PartnerLimiter,
        settings: Settings,
    ) -> None:
        explorer = settings.env != "production"
        super().__init__(
            schema,
            # Which page strawberry would serve matters not: ours replaces it (render_graphql_ide).
            graphql_ide="graphiql" if explorer else None,
            allow_queries_via_get=False,
            # graphql-transport-ws only: it authenticates when the connection opens (on_ws_connect).
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            connection_init_wait_timeout=timedelta(seconds=10),
            max_subscriptions_per_connection=settings.subscriptions_per_connection,
        )
        self.trusted = schema.trusted_documents
        self.cards = cards
        self.business = business
        self.policy = policy
        self.limiter = limiter
        self.settings = settings

    async def render_graphql_ide(self, request: Request) -> Response:
        # The explorer page of our own (app/graphql/explorer.html): strawberry's GraphiQL loads its
        # scripts from a CDN, a blank page on an offline government network.
        return HTMLResponse(EXPLORER_PAGE)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope=scope, receive=receive)
        refused = await revision_refusal(request, self.policy, self.settings.revision_wait_seconds)
        if refused is not None:
            await refused(scope, receive, send)
            return
        started = time.perf_counter()
        try:
            planned = await planned_call(request, self.trusted)
            response = await (self.run_planned(request, *planned) if planned else self.run(request))
        except HTTPException as err:
            # Malformed JSON, an empty body, no query, a wrong content type, a batch: strawberry says
            # so in plain text; answer in the one error shape, with a code, like every other refusal.
            response = error_response(err.reason, "BAD_INPUT", err.status_code)
        except UntrustedDocument:
            scope[OUTCOME] = "FORBIDDEN"
            response = error_response(UntrustedDocument.MESSAGE, "FORBIDDEN", 403)
        await response(scope, receive, send)
        operation = operation_of(scope)
        metrics.REQUESTS.labels(operation, scope.get(OUTCOME, "BAD_INPUT")).inc()
        metrics.LATENCY.labels(operation).observe(time.perf_counter() - started)

    async def run_planned(
        self, request: Request, plan: CompiledOperation, variables: dict | None
    ) -> Response:
        """A trusted document's call answered from its plan, as strawberry's `run` would answer it:
        the same context, the same processing of the result, the same response."""
        context = await self.get_context(request, response=None)
        result = await plan.execute(self.schema._schema, context, variables)
        data = await self.process_result(request, result)
        return Response(self.encode_json(data), media_type="application/json")

    async def parse_http_body(self, request_adapter) -> GraphQLRequestData:
        """The request, a trusted document's text put in for its hash; in production a partner key
        may send nothing else (app/graphql/trusted_documents.py)."""
        data = await super().parse_http_body(request_adapter)
        if isinstance(data, list):  # a batch: refused by strawberry's own check before this
            return data
        if holds_nul(data.variables) or (isinstance(data.query, str) and NUL_ESCAPE.search(data.query)):
            raise HTTPException(400, NUL_MESSAGE)
        persisted = (data.extensions or {}).get("persistedQuery")
        if persisted is not None:
            sha256 = persisted.get("sha256Hash") if isinstance(persisted, dict) else None
            found = self.trusted.by_hash(sha256) if isinstance(sha256, str) else None
            if found is None:
                raise HTTPException(400, "no registered partner document has this sha256Hash")
            if data.query is not None and data.query != found.text:
                raise HTTPException(400, "the query text is not the document its sha256Hash names")
            data.query = found.text
        elif (
            self.settings.env == "production"
            and "x-api-key" in request_adapter.headers
            and self.trusted.by_text(data.query) is None
        ):
            raise UntrustedDocument
        return data

    async def execute_single(
        self, request, request_adapter, sub_response, context, root_value, request_data
    ) -> ExecutionResult:
        """A trusted document with a plan runs from it (app/graphql/compiled.py); any other
        request, and one naming another operation than the document's, goes the generic way."""
        found = self.trusted.by_text(request_data.query) if request_adapter.method == "POST" else None
        compiled = found.plan_for(request_data.operation_name) if found is not None else None
        if compiled is not None:
            return await compiled.execute(self.schema._schema, context, request_data.variables)
        return await super().execute_single(
            request, request_adapter, sub_response, context, root_value, request_data
        )

    def decode_json(self, data: str | bytes) -> object:
        # orjson refuses what json.loads lets through: a lone UTF-16 surrogate ("\ud800"), which
        # no database can store (the security review got INTERNAL from one in an outlet name).
        decoded = orjson.loads(data)
        if not isinstance(decoded, dict | list):
            # "42" or "\"text\"" is JSON but no request: strawberry would fail on it with a 500.
            raise orjson.JSONDecodeError("a GraphQL request is a JSON object", "", 0)
        return decoded

    def encode_json(self, data: object) -> bytes:
        # UTF-8 (Chinese as itself, not \uXXXX escapes), and several times faster than json.dumps.
        return orjson.dumps(data)

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        # Syntax and limit errors are raised while parsing, outside the error-masking extension:
        # give them the code every other refusal of the query itself carries.
        response = await super().process_result(request, result)
        errors = response.get("errors") or ()
        # The first error's code, for the metrics (a closed set: the codes of app/ops/errors).
        request.scope[OUTCOME] = (
            (errors[0].get("extensions") or {}).get("code", "BAD_INPUT") if errors else "ok"
        )
        for error in errors:
            error["extensions"] = {"code": "BAD_INPUT", **(error.get("extensions") or {})}
            if self.settings.env == "production":
                # "Did you mean 'issueToken'?" would hand the schema, which introspection keeps
                # from anyone in production, to a caller without credentials, one guess at a time.
                error["message"] = _SUGGESTION.sub("", error["message"])
        return response

    async def on_ws_connect(self, context: Context) -> None:
        """A WebSocket connection is accepted only with a valid token in its `connection_init`."""
        try:
            await context.actor()
        except OpsError as err:
            raise ConnectionRejectionError({"code": err.code, "message": err.message}) from None

    async def get_context(self, request: Request, response) -> Context:
        # Set by app.logs.RequestIds for HTTP; a WebSocket connection gets its own.
        request_id = request.scope.get("request_id") or request_id_from(request.headers.get("x-request-id"))
        return Context(
            request=request,
            request_id=request_id,
            business=self.business,
            cards=self.cards,
            limiter=self.limiter,
            settings=self.settings,
            policy=self.policy,
        )


class OutageAnswers:
    """ASGI middleware: a database outage that escapes a console page or a download is answered
    UNAVAILABLE (503, retry) instead of a 500, when nothing of the answer was sent yet; anything else
    goes on to Starlette's own 500."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        started = False

        async def watched(message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as error:
            if scope["type"] != "http" or started or not database_unavailable(error):
                raise
            log.warning(
                "database unavailable (request %s): %s", scope.get("request_id"), type(error).__name__
            )
            await error_response(UNAVAILABLE_MESSAGE, "UNAVAILABLE", 503, retryAfter=1)(scope, receive, send)


# The cyclic collector's thresholds (CPython's default: 700, 10, 10). A bulk grant allocates millions
# of objects in seconds; at the default, full collections kept walking everything not frozen mid-grant,
# 30–130 ms each with no partner call answered (bench/loop_blocks.py). Here a young collection looks at
# 10,000 objects, a middle one at most 100,000 (tens of ms here), and a full one comes after 100 of those.
GC_THRESHOLDS = (10_000, 10, 100)


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or get_settings()
    gc.set_threshold(*GC_THRESHOLDS)
    engine = make_async_engine(settings.database_url, echo=settings.sql_echo)
    sessions = make_session_factory(engine)
    # Each worker keeps the business policy in memory and tails the change log (DESIGN.md §5).
    business = BusinessPolicy()
    snapshots = None
    if settings.policy_snapshot_dir is not None:
        lookup_key = resolve_keys(settings)[1]
        snapshots = PolicySnapshots(settings.policy_snapshot_dir, settings.database_url, lookup_key, business)
    tailer = PolicyTailer(
        sessions,
        load=business.load,
        apply=business.apply,
        database_url=settings.database_url,
        # The loaded policy is millions of long-lived objects; left to the cyclic garbage collector,
        # every full collection walks them all (~17% of a partner worker's time, and its p99). Frozen,
        # they are never scanned again; they hold no cycles, so reference counting still frees
        # them when the policy is reloaded.
        on_loaded=gc.freeze,
        on_poll=lambda behind: metrics.policy_polled(business.line_count, behind),
        snapshots=snapshots,
    )
    cipher = field_cipher(settings)
    cards = CardStore(sessions, PointReader(engine), AuditWriter(settings.database_url), cipher)
    limiter = PartnerLimiter(
        settings.rate_limit_storage, settings.partner_rate_limit, settings.partner_rate_limit_max
    )
    graphql = GraphQLApp(build_schema(settings), cards, business, tailer, limiter, settings)

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def metrics_page(_: Request) -> Response:
        page, content_type = metrics.exposition()
        return Response(page, media_type=content_type)

    async def readyz(_: Request) -> JSONResponse:
        try:
            async with engine.connect() as connection:
                await connection.execute(text("select 1"))
        except Exception as err:  # any failure to reach the database means "not ready"
            log.warning("readiness check failed: %s", type(err).__name__)
            return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
        if not tailer.loaded:
            return JSONResponse(
                {"status": "unavailable", "database": "ok", "policy": "loading"}, status_code=503
            )
        return JSONResponse({"status": "ready", "database": "ok", "policy": "loaded"})

    signer = Signer(resolve_signing_key(settings))

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette):
        metrics.forget_dead_workers()
        await tailer.start()
        # Checkpoints of the audit chains on a timer (app/ops/compliance/checkpoints.py).
        seconds = settings.audit_checkpoint_seconds
        timer = asyncio.create_task(checkpoint_timer(sessions, signer, seconds)) if seconds else None
        try:
            yield
        finally:
            if timer is not None:
                timer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await timer
            await tailer.stop()
            await cards.close()
            await limiter.close()
            await engine.dispose()

    guarded = RequestSizeLimit(
        graphql,
        max_body_bytes=settings.max_request_bytes,
        max_document_bytes=settings.graphql_max_document_bytes,
    )
    permission_matrix, audit_events = report_routes(settings)
    app = Starlette(
        routes=[
            Route("/graphql", guarded, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Route("/reports/permission-matrix", permission_matrix),
            Route("/reports/audit-events", audit_events),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics_page),
            console_mount(),
        ],
        lifespan=lifespan,
        middleware=[Middleware(RequestIds), Middleware(OutageAnswers)],
    )
    app.state.console = Console.create(sessions, settings, cipher, tailer)
    app.state.sessions = sessions
    app.state.engine = engine
    app.state.business = business
    app.state.cards = cards
    app.state.limiter = limiter
    app.state.tailer = tailer
    return app
