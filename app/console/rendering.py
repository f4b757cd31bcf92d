"""Pages from Jinja2 templates (app/console/templates), autoescaped, in the request's language, with
the form token of the request's session; and the cookies the console sets."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from app.console.i18n import LANGUAGE_NAMES, LANGUAGES, Translator, chosen

TEMPLATES = Path(__file__).resolve().parent / "templates"
_ENVIRONMENT = Environment(
    loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]), auto_reload=False
)
SESSION_COOKIE = "ssc_session"
LOGIN_COOKIE = "ssc_login"  # the form token before there is a session (double submit)
# Nothing from elsewhere, no framing, no inline script but the little the pages carry themselves.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    translator = Translator(chosen(request))
    page = _ENVIRONMENT.get_template(template).render(
        _=translator.gettext,
        t=translator,
        language=translator.language,
        languages=[(code, LANGUAGE_NAMES[code]) for code in LANGUAGES],
        path=request.url.path,
        here=here(request),
        **context,
    )
    return HTMLResponse(page, status_code=status, headers=SECURITY_HEADERS)


def here(request: Request) -> str:
    """Where the language switch comes back to: the same page with the same query; for the answer to
    a form (not a page one can GET again), the page the form was on."""
    if request.method == "GET":
        return request.url.path + (f"?{request.url.query}" if request.url.query else "")
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.netloc == request.url.netloc and referer.path.startswith("/console/"):
        return referer.path + (f"?{referer.query}" if referer.query else "")
    return "/console/"


MAX_FORM_BYTES = 3 * 1024 * 1024  # the largest form is an outlet import's CSV file (2 MB)


def too_large(request: Request) -> bool:
    """A posted body that does not say its size or says too much: refused before any of it is read
    (a browser's form always says its size)."""
    length = request.headers.get("content-length", "")
    return not (length.isascii() and length.isdigit() and len(length) <= 9) or int(length) > MAX_FORM_BYTES


def refused_size(request: Request) -> HTMLResponse:
    return render(request, "refused.html", status=413, too_large=True)


def secure(request: Request) -> bool:
    """Cookies are Secure except over plain HTTP to this machine itself (development)."""
    host = request.url.hostname or ""
    return request.url.scheme == "https" or host not in ("127.0.0.1", "localhost", "::1")


def set_cookie(
    response: Response, request: Request, name: str, value: str, max_age: int | None = None
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/console",
        secure=secure(request),
        httponly=True,
        samesite="strict",
    )
