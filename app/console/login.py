"""Logging in to the console: name and password, then a TOTP code (enrolled with a QR code at the
first login), then the session's cookie; and logging out. Over the use cases of
app/ops/principals/logins.py and console_sessions.py; every form carries its token (CSRF)."""

from __future__ import annotations

import hashlib
import hmac
import io
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import qrcode
import qrcode.image.svg
from sqlalchemy.ext.asyncio import async_sessionmaker
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from app.authz.sync import PolicyTailer
from app.console.i18n import COOKIE as LANGUAGE_COOKIE
from app.console.i18n import LANGUAGES
from app.console.rendering import LOGIN_COOKIE, SESSION_COOKIE, refused_size, render, set_cookie, too_large
from app.ops.auth import Actor
from app.ops.errors import OpsError
from app.ops.principals.console_sessions import EXPIRED, console_actor, csrf_ok, csrf_token, log_out
from app.ops.principals.logins import enrolment, password_step, second_factor_step
from app.settings import Settings, resolve_keys
from app.store.crypto import FieldCipher

HOME = "/console/"
T = TypeVar("T")


@dataclass
class Console:
    """What the console's pages need: the database, the settings, the data key (TOTP secrets), the
    key form tokens are derived with and what keeps this worker's policy in step with the change log."""

    sessions: async_sessionmaker
    settings: Settings
    cipher: FieldCipher
    form_key: bytes
    policy: PolicyTailer

    @classmethod
    def create(
        cls, sessions: async_sessionmaker, settings: Settings, cipher: FieldCipher, policy: PolicyTailer
    ) -> Console:
        # The form tokens' key is derived from the lookup key for this one use, not the key itself.
        form_key = hmac.new(resolve_keys(settings)[1], b"ssc console form tokens", hashlib.sha256).digest()
        return cls(sessions, settings, cipher, form_key, policy)

    @property
    def idle(self) -> timedelta:
        return timedelta(minutes=self.settings.console_idle_minutes)

    def form_token(self, request: Request) -> str:
        return csrf_token(self.form_key, request.cookies.get(SESSION_COOKIE, ""))

    async def actor(self, request: Request) -> Actor | None:
        """The person logged in, or None (no session, or it ended)."""
        try:
            return await console_actor(self.sessions, request.cookies.get(SESSION_COOKIE), self.idle)
        except OpsError:
            return None

    async def run(
        self, request: Request, actor: Actor, use_case: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any
    ) -> T:
        """Run a use case of app/ops as `actor`, the way the GraphQL API does (Context.run): what it
        commits is applied to this worker's policy before the page answers, so the change the person
        is told about is in force for their very next request."""
        result = await use_case(self.sessions, actor, *args, request_id=request_id(request), **kwargs)
        await self.policy.catch_up()
        return result

    async def read(
        self, request: Request, actor: Actor, use_case: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any
    ) -> T:
        """Run a read of app/ops as `actor`: the same shape as `run`, nothing to apply."""
        return await use_case(self.sessions, actor, *args, request_id=request_id(request), **kwargs)

    async def form(self, request: Request) -> dict[str, str] | None:
        """The posted form if it carries this session's token; None otherwise (refused)."""
        form = await request.form()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        return (
            fields
            if csrf_ok(self.form_key, request.cookies.get(SESSION_COOKIE), fields.get("csrf"))
            else None
        )


def request_id(request: Request) -> str:
    """The request's id, kept in its audit events: the proxy's X-Request-Id, else one made here."""
    if "request_id" not in request.scope:
        request.scope["request_id"] = (request.headers.get("x-request-id") or uuid.uuid4().hex)[:64]
    return request.scope["request_id"]


def address(request: Request) -> str | None:
    return request.client.host if request.client else None


def refused_form(request: Request) -> Response:
    return render(request, "refused.html", status=403)


async def login_page(request: Request) -> Response:
    console: Console = request.app.state.console
    if await console.actor(request) is not None:
        return RedirectResponse(HOME, status_code=303)
    token = secrets.token_urlsafe(24)
    page = render(request, "login.html", csrf=token, error=None)
    set_cookie(page, request, LOGIN_COOKIE, token, max_age=3600)
    return page


async def login_submit(request: Request) -> Response:
    console: Console = request.app.state.console
    if too_large(request):
        return refused_size(request)
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    expected = request.cookies.get(LOGIN_COOKIE)
    if not expected or not secrets.compare_digest(expected, fields.get("csrf", "")):
        return refused_form(request)
    try:
        step = await password_step(
            console.sessions,
            console.settings,
            fields.get("name", ""),
            fields.get("password", ""),
            address(request),
        )
    except OpsError as err:
        return render(
            request,
            "login.html",
            status=401 if err.code == "UNAUTHENTICATED" else 429,
            csrf=expected,
            error=err.code,
        )
    response = RedirectResponse(
        "/console/enrol" if step.stage == "enrol" else "/console/code", status_code=303
    )
    set_cookie(response, request, SESSION_COOKIE, step.token)
    response.delete_cookie(LOGIN_COOKIE, path="/console")
    return response


async def enrol_page(request: Request) -> Response:
    console: Console = request.app.state.console
    try:
        secret, uri = await enrolment(console.sessions, console.cipher, request.cookies.get(SESSION_COOKIE))
    except OpsError:
        return RedirectResponse("/console/login", status_code=303)
    buffer = io.BytesIO()
    qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=8).save(buffer)
    svg = buffer.getvalue().decode()
    svg = svg[svg.index("<svg") :]  # inline, without the XML declaration
    spaced = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    return render(
        request,
        "code.html",
        enrolling=True,
        qr=svg,
        secret=spaced,
        csrf=console.form_token(request),
        error=None,
    )


async def code_page(request: Request) -> Response:
    console: Console = request.app.state.console
    if not request.cookies.get(SESSION_COOKIE):
        return RedirectResponse("/console/login", status_code=303)
    return render(request, "code.html", enrolling=False, csrf=console.form_token(request), error=None)


async def code_submit(request: Request) -> Response:
    console: Console = request.app.state.console
    if too_large(request):
        return refused_size(request)
    fields = await console.form(request)
    if fields is None:
        return refused_form(request)
    try:
        await second_factor_step(
            console.sessions,
            console.settings,
            console.cipher,
            request.cookies.get(SESSION_COOKIE),
            fields.get("code", ""),
            address(request),
        )
    except OpsError as err:
        if err.message == EXPIRED:  # no half-open session to finish: start again
            return RedirectResponse("/console/login", status_code=303)
        return render(
            request,
            "code.html",
            status=401,
            enrolling=False,
            csrf=console.form_token(request),
            error=err.code,
        )
    return RedirectResponse(HOME, status_code=303)


async def logout_submit(request: Request) -> Response:
    console: Console = request.app.state.console
    if await console.form(request) is None:
        return refused_form(request)
    await log_out(console.sessions, request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/console")
    return response


async def choose_language(request: Request) -> Response:
    """The language switch: a preference, kept in a cookie; back to where it was used."""
    language = request.path_params["language"]
    back = request.query_params.get("next", HOME)
    if not back.startswith("/console/") or back.startswith("//"):
        back = HOME
    response = RedirectResponse(back, status_code=303)
    if language in LANGUAGES:
        set_cookie(response, request, LANGUAGE_COOKIE, language, max_age=365 * 86400)
    return response
