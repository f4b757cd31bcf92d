"""What every page after login shares: the person (or the way back to the login page), the page in
their language with their form token, a posted form checked against that token, and a refusal of a
use case shown as a person reads it (the code explained, the field it concerns)."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from app.console.login import Console, refused_form
from app.console.rendering import refused_size, render, too_large
from app.ops.auth import Actor, area_top
from app.ops.errors import OpsError

LOGIN = "/console/login"

Page = Callable[[Request, Console, Actor], Awaitable[Response]]
Posted = Callable[[Request, Console, Actor, dict[str, str]], Awaitable[Response]]

# The HTTP status a refused page answers with, by the API's error code.
STATUS = {
    "BAD_INPUT": 400,
    "UNAUTHENTICATED": 401,
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "CONFLICT": 409,
    "CEILING_EXCEEDED": 409,
    "RATE_LIMITED": 429,
}
# What each code means to the person who met it (translated in the catalogues).
EXPLAINED = {
    "BAD_INPUT": "A value is not valid; see the field marked below.",
    "UNAUTHENTICATED": "You are not logged in.",
    "FORBIDDEN": "That is outside your area or your role.",
    "NOT_FOUND": "That does not exist.",
    "CONFLICT": "Someone changed it meanwhile, or the name is taken: reload and try again.",
    "CEILING_EXCEEDED": "The ceiling of this department or one above it does not allow that card service.",
    "RATE_LIMITED": "Too many attempts: wait a moment and try again.",
}


@dataclass(frozen=True)
class Problem:
    """A refused change as the page shows it: the code, the use case's own words, the field(s)."""

    code: str
    message: str
    field: str | None = None
    fields: dict[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def of(cls, err: OpsError) -> Problem:
        listed = err.extensions.get("problems") or []
        fields = {p["field"]: p["message"] for p in listed if isinstance(p, dict) and "field" in p}
        named = err.extensions.get("field")
        if isinstance(named, str):
            fields.setdefault(named, err.message)
        return cls(err.code, err.message, named if isinstance(named, str) else None, fields)

    def marked(self, form_field: dict[str, str]) -> dict[str, str]:
        """The refused fields under the form's own names (the use case names some differently)."""
        return {form_field.get(name, name): text for name, text in self.fields.items()}

    @property
    def status(self) -> int:
        return STATUS.get(self.code, 400)

    @property
    def explained(self) -> str:
        return EXPLAINED.get(self.code, EXPLAINED["BAD_INPUT"])


def form_number(fields: dict[str, str], name: str) -> int:
    """A whole number a form carries (a version, a count, days): 1 to 9 digits, else BAD_INPUT
    (a thousand-digit "version" must not reach int() or the database)."""
    value = fields.get(name, "")
    if not (value.isascii() and value.isdigit() and len(value) <= 9):
        raise OpsError("BAD_INPUT", f"{name} is a whole number; reload the page and use its form", field=name)
    return int(value)


def query_asked(request: Request, actor: Actor, names: tuple[str, ...], obj: str) -> dict[str, str]:
    """The page's query parameters `names`, trimmed; the department defaults to the top of the area
    where the person may read `obj`."""
    found = {name: request.query_params.get(name, "").strip() for name in names}
    found["tenant"] = found.get("tenant") or area_top(actor, obj) or ""
    return found


def show(
    request: Request, console: Console, actor: Actor, template: str, status: int = 200, **context: Any
) -> HTMLResponse:
    """A page for the person logged in: the top bar with their name and the form token."""
    return render(request, template, status=status, actor=actor, csrf=console.form_token(request), **context)


def signed_in(page: Page) -> Callable[[Request], Awaitable[Response]]:
    """A page only for someone logged in; anyone else goes to the login page."""

    @wraps(page)
    async def endpoint(request: Request) -> Response:
        console: Console = request.app.state.console
        actor = await console.actor(request)
        if actor is None:
            return RedirectResponse(LOGIN, status_code=303)
        return await page(request, console, actor)

    return endpoint


def posted(handler: Posted) -> Callable[[Request], Awaitable[Response]]:
    """A form's target: only for someone logged in, and only with the form's token (CSRF)."""

    @wraps(handler)
    async def endpoint(request: Request) -> Response:
        console: Console = request.app.state.console
        actor = await console.actor(request)
        if actor is None:
            return RedirectResponse(LOGIN, status_code=303)
        if too_large(request):
            return refused_size(request)
        fields = await console.form(request)
        if fields is None:
            return refused_form(request)
        return await handler(request, console, actor, fields)

    return endpoint


def go(url: str) -> RedirectResponse:
    """After a change, to the page that shows it (post/redirect/get: a reload does not repeat it)."""
    return RedirectResponse(url, status_code=303)
