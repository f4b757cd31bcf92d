"""The console under /console/: server-rendered pages for administrators, approvers and auditors, in
Simplified Chinese first and English second. Every page calls the same use cases as the GraphQL API
(app/ops), so authorization, validation, transactions and audit events are the API's; forms work
without JavaScript; every asset is served by the app itself (app/console/static)."""

from __future__ import annotations

from pathlib import Path

from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from app.console.login import (
    choose_language,
    code_page,
    code_submit,
    enrol_page,
    login_page,
    login_submit,
    logout_submit,
)
from app.console.outlets import outlets_page
from app.console.overview import overview_page

STATIC = Path(__file__).resolve().parent / "static"


def console_mount() -> Mount:
    return Mount(
        "/console",
        routes=[
            Route("/", overview_page),
            Route("/outlets", outlets_page, methods=["GET"]),
            Route("/login", login_page, methods=["GET"]),
            Route("/login", login_submit, methods=["POST"]),
            Route("/enrol", enrol_page, methods=["GET"]),
            Route("/code", code_page, methods=["GET"]),
            Route("/code", code_submit, methods=["POST"]),
            Route("/logout", logout_submit, methods=["POST"]),
            Route("/language/{language}", choose_language, methods=["GET"]),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
    )
