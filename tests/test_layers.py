"""The layers of docs/architecture.md, checked over the source: imports point down (graphql, cli and
web → ops → authz → store → domain), and the areas of app/ops/ never import each other in a circle.

Every import counts, including those inside functions (the CLI imports lazily so that `ssc --help`
stays fast), since a lazy import upwards is the same dependency as an eager one.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parent.parent / "app"

# What each layer may import from the others (its own layer is always allowed, except where an entry
# point would reach into another entry point). `settings` is configuration every layer above the
# domain may read; the domain stays pure.
ALLOWED = {
    "domain": set(),
    "settings": set(),
    # The metrics and the log format are instruments every layer above the domain may use.
    "metrics": set(),
    "logs": set(),
    "store": {"domain", "settings", "metrics", "logs"},
    "authz": {"domain", "store", "settings", "metrics", "logs"},
    "ops": {"domain", "store", "authz", "settings", "metrics", "logs"},
    # Report downloads (CSV, XLSX) over the compliance use cases, served by the API and the console.
    "downloads": {"domain", "store", "authz", "ops", "settings"},
    "graphql": {"domain", "store", "authz", "ops", "downloads", "settings", "metrics", "logs"},
    # `ssc partner-documents` lists the trusted documents the GraphQL schema registers.
    "cli": {"domain", "store", "authz", "ops", "graphql", "settings", "metrics", "logs"},
    # The console is the GraphQL API's sibling: pages over the same use cases.
    "console": {"domain", "store", "authz", "ops", "downloads", "settings", "logs"},
    "web": {"domain", "store", "authz", "ops", "graphql", "console", "settings", "metrics", "logs"},
}
# The modules directly in app/ops/ that every area shares; they may not depend on an area.
OPS_SHARED = {"auth", "errors", "inputs", "refusals", "__init__"}


def module_name(path: Path, app: Path) -> str:
    parts = path.relative_to(app.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, app: Path) -> set[str]:
    """Every `app.…` module that `path` imports, anywhere in the file."""
    name = module_name(path, app)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name == "app" or name.startswith("app.")}


def layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ALLOWED else None


def ops_area(module: str) -> str | None:
    """The area of app/ops/ a module belongs to (tenants, grants, ...), or None outside the areas."""
    parts = module.split(".")
    if len(parts) < 3 or parts[1] != "ops" or parts[2] in OPS_SHARED:
        return None
    return parts[2]


def upward_imports(app: Path = APP) -> list[str]:
    found = []
    for path in sorted(app.rglob("*.py")):
        if path == app / "__init__.py":
            continue  # the package's marker: it imports nothing
        here = layer(module_name(path, app))
        assert here is not None, f"{path} is in no layer; add it to ALLOWED in {__file__}"
        for target in imported_modules(path, app):
            there = layer(target)
            if there is not None and there != here and there not in ALLOWED[here]:
                found.append(f"{module_name(path, app)} ({here}) imports {target} ({there})")
    return found


def shared_ops_depending_on_areas(app: Path = APP) -> list[str]:
    found = set()
    for path in (app / "ops").glob("*.py"):
        for target in imported_modules(path, app):
            if (area := ops_area(target)) is not None:
                found.add(f"{module_name(path, app)} imports app.ops.{area}")
    return sorted(found)


def area_graph(app: Path = APP) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for path in (app / "ops").rglob("*.py"):
        here = ops_area(module_name(path, app))
        for target in imported_modules(path, app):
            there = ops_area(target)
            if here is not None and there is not None and there != here:
                graph[here].add(there)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each circle of the graph once, as the path that closes it (depth-first search)."""
    found, done = [], set()

    def visit(node: str, trail: list[str]) -> None:
        if node in trail:
            found.append([*trail[trail.index(node) :], node])
            return
        if node in done:
            return
        for target in sorted(graph.get(node, ())):
            visit(target, [*trail, node])
        done.add(node)

    for node in sorted(graph):
        visit(node, [])
    return found


def test_no_module_imports_upwards():
    assert upward_imports() == []


def test_the_shared_ops_modules_depend_on_no_area():
    assert shared_ops_depending_on_areas() == []


def test_no_two_areas_of_ops_import_each_other_in_a_circle():
    graph = area_graph()
    # The check sees the real dependencies (an empty graph would pass without checking anything).
    assert {"grants", "outlets", "tenants"} <= set(graph) | {a for t in graph.values() for a in t}
    assert circles(graph) == []


def test_at_most_four_modules_beside_the_areas_of_ops():
    modules = {p.stem for p in (APP / "ops").glob("*.py")} - {"__init__"}
    assert len(modules) <= 4 and modules <= OPS_SHARED


@pytest.mark.parametrize(
    ("source", "where", "expected"),
    [
        # Each kind of import the checks must see: absolute, from-import, relative, inside a function.
        (
            "from app.graphql.types import grant\n",
            "store/x.py",
            "app.store.x (store) imports app.graphql.types",
        ),
        ("import app.ops.auth\n", "domain/x.py", "app.domain.x (domain) imports app.ops.auth (ops)"),
        ("from ..ops import auth\n", "authz/x.py", "app.authz.x (authz) imports app.ops (ops)"),
        ("def f():\n    from app.web import create_app\n", "cli.py", "app.cli (cli) imports app.web (web)"),
    ],
)
def test_the_check_sees_an_upward_import(tmp_path, source, where, expected):
    fake = tmp_path / "app"
    target = fake / where
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(source, encoding="utf-8")
    assert any(line.startswith(expected) for line in upward_imports(fake)), upward_imports(fake)


def test_the_check_sees_a_circle_of_areas(tmp_path):
    fake = tmp_path / "app"
    for area, other in (("grants", "outlets"), ("outlets", "tenants"), ("tenants", "grants")):
        (fake / "ops" / area).mkdir(parents=True)
        (fake / "ops" / area / "admin.py").write_text(f"from app.ops.{other}.admin import x\n")
    (fake / "ops" / "errors.py").write_text("from app.ops.grants.admin import x\n")
    assert circles(area_graph(fake)) == [["grants", "outlets", "tenants", "grants"]]
    assert shared_ops_depending_on_areas(fake) == ["app.ops.errors imports app.ops.grants"]


def test_a_module_over_400_lines_says_why_it_stays_whole():
    long = []
    for path in sorted(APP.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        docstring = ast.get_docstring(ast.parse(source)) or ""
        if source.count("\n") > 400 and "one job" not in docstring.lower():
            long.append(str(path.relative_to(APP.parent)))
    assert long == []
