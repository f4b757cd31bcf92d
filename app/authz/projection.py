"""How rows project onto business-plane policy lines (DESIGN.md §5)."""

from __future__ import annotations

from app.store.policy import ProjectedLine

OPEN_END = "9999-12-31T23:59:59Z"


def outlet_subject(outlet_id: str) -> str:
    return f"outlet:{outlet_id}"


def kind_subject(kind: str) -> str:
    return f"kind:{kind}"


def outlet_group_line(outlet_id: str, kind: str, tenant_path: str) -> ProjectedLine:
    """Every outlet is in its kind's group inside its own tenant: `g, outlet:<id>, kind:<kind>, <tenant>`."""
    return ProjectedLine(
        "g", (outlet_subject(outlet_id), kind_subject(kind), tenant_path), "outlet", outlet_id
    )
