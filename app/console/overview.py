"""The overview: the departments of the caller's area as a tree, each with the settings in force there
(and where each comes from), over app/ops/tenants/admin.area_tree; and charts of the area (grants in
force by card service and by outlet kind per department below, decisions of the last 30 days,
activated cards by channel), over app/ops/tenants/dashboard."""

from __future__ import annotations

from collections import Counter

from starlette.requests import Request
from starlette.responses import Response

from app.console.charts import simple, stacked
from app.console.login import Console
from app.console.pages import show, signed_in
from app.domain.catalogue import ActivationChannel, CardService, OutletKind
from app.domain.reasons import Reason
from app.ops.auth import Actor
from app.ops.tenants.admin import area_tree
from app.ops.tenants.dashboard import Breakdown, dashboard


def _per_department(breakdown: Breakdown, keys: list[str]):
    return stacked([(path, breakdown.counts.get(path, Counter())) for path, _ in breakdown.departments], keys)


@signed_in
async def overview_page(request: Request, console: Console, actor: Actor) -> Response:
    tree = await console.read(request, actor, area_tree)
    figures = await console.read(request, actor, dashboard)
    charts = {}
    if figures.by_service is not None:
        charts["by_service"] = _per_department(figures.by_service, [s.value for s in CardService])
        charts["by_kind"] = _per_department(figures.by_kind, [k.value for k in OutletKind])
    if figures.decisions is not None:
        # Allowed calls in one bar, refusals one bar per reason.
        outcomes = Counter()
        for (decision, reason), count in figures.decisions.items():
            outcomes["allow" if decision == "allow" else reason or "deny"] += count
        charts["decisions"] = simple(outcomes, ["allow", *(r.value for r in Reason), "NOT_FOUND", "deny"])
        charts["activations"] = simple(figures.activations, [c.value for c in ActivationChannel])
    departments = dict(figures.by_service.departments) if figures.by_service else {}
    return show(request, console, actor, "overview.html", tree=tree, charts=charts, departments=departments)
