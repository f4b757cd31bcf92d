"""The console under /console/: server-rendered pages for administrators, approvers and auditors, in
Simplified Chinese first and English second. Every page calls the same use cases as the GraphQL API
(app/ops), so authorization, validation, transactions and audit events are the API's; forms work
without JavaScript; every asset is served by the app itself (app/console/static)."""

from __future__ import annotations

from pathlib import Path

from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from app.console.approvals import approvals_page, decide_batch_submit, decide_submit
from app.console.audit import anomalies_page, audit_page, grant_history_page
from app.console.bulk import bulk_page, bulk_preview_submit, bulk_submit
from app.console.ceilings import ceiling_preview_submit, ceiling_submit, ceilings_page
from app.console.compliance import (
    audit_events_download,
    permission_matrix_download,
    what_can_page,
    who_can_page,
)
from app.console.grants import grant_change_submit, grant_new_page, grant_new_submit, grant_page, grants_page
from app.console.login import (
    choose_language,
    code_page,
    code_submit,
    enrol_page,
    login_page,
    login_submit,
    logout_submit,
)
from app.console.outlet import close_submit, key_revoke, key_submit, move_submit, outlet_page
from app.console.outlet_import import import_page, import_submit
from app.console.outlet_new import new_outlet_page, new_outlet_submit
from app.console.outlets import outlets_page
from app.console.overview import overview_page
from app.console.people import (
    assign_submit,
    deactivate_submit,
    new_person_page,
    new_person_submit,
    people_page,
    person_page,
    remove_submit,
    revoke_token_submit,
)

STATIC = Path(__file__).resolve().parent / "static"


def console_mount() -> Mount:
    return Mount(
        "/console",
        routes=[
            Route("/", overview_page),
            Route("/outlets", outlets_page, methods=["GET"]),
            Route("/outlets/import", import_page, methods=["GET"]),
            Route("/outlets/import", import_submit, methods=["POST"]),
            Route("/outlets/new", new_outlet_page, methods=["GET"]),
            Route("/outlets/new", new_outlet_submit, methods=["POST"]),
            Route("/outlets/{outlet_id}", outlet_page, methods=["GET"]),
            Route("/outlets/{outlet_id}/close", close_submit, methods=["POST"]),
            Route("/outlets/{outlet_id}/move", move_submit, methods=["POST"]),
            Route("/outlets/{outlet_id}/keys", key_submit, methods=["POST"]),
            Route("/outlets/{outlet_id}/keys/{key_id:int}/revoke", key_revoke, methods=["POST"]),
            Route("/grants", grants_page, methods=["GET"]),
            Route("/grants/bulk", bulk_page, methods=["GET"]),
            Route("/grants/bulk", bulk_submit, methods=["POST"]),
            Route("/grants/bulk/preview", bulk_preview_submit, methods=["POST"]),
            Route("/grants/new", grant_new_page, methods=["GET"]),
            Route("/grants/new", grant_new_submit, methods=["POST"]),
            Route("/grants/{grant_id}", grant_page, methods=["GET"]),
            Route("/grants/{grant_id}/{action}", grant_change_submit, methods=["POST"]),
            Route("/ceilings", ceilings_page, methods=["GET"]),
            Route("/ceilings", ceiling_submit, methods=["POST"]),
            Route("/ceilings/preview", ceiling_preview_submit, methods=["POST"]),
            Route("/audit", audit_page, methods=["GET"]),
            Route("/who-can", who_can_page, methods=["GET"]),
            Route("/what-can", what_can_page, methods=["GET"]),
            Route("/grant-history", grant_history_page, methods=["GET"]),
            Route("/anomalies", anomalies_page, methods=["GET"]),
            Route("/reports/permission-matrix", permission_matrix_download, methods=["GET"]),
            Route("/reports/audit-events", audit_events_download, methods=["GET"]),
            Route("/people", people_page, methods=["GET"]),
            Route("/people/new", new_person_page, methods=["GET"]),
            Route("/people/new", new_person_submit, methods=["POST"]),
            Route("/people/{name}", person_page, methods=["GET"]),
            Route("/people/{name}/roles", assign_submit, methods=["POST"]),
            Route("/people/{name}/roles/remove", remove_submit, methods=["POST"]),
            Route("/people/{name}/tokens/{token_id:int}/revoke", revoke_token_submit, methods=["POST"]),
            Route("/people/{name}/deactivate", deactivate_submit, methods=["POST"]),
            Route("/approvals", approvals_page, methods=["GET"]),
            Route("/approvals/batch", decide_batch_submit, methods=["POST"]),
            Route("/approvals/{grant_id}", decide_submit, methods=["POST"]),
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
