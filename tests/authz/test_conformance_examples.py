"""The indexed enforcer against casbin.Enforcer on pycasbin's own example models and policies.

The pairs come from the table in ../shared/casbin-examples/README.md (kept beside the project,
not in it). For each pair every combination of the values appearing in the policy file (plus an
unknown value per field) is asked of both engines; any difference fails.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import casbin
import pytest

from app.authz.engine import IndexedEnforcer
from app.authz.model import PolicyShapeError, UnsupportedModel, compile_model, load_model, read_policy_lines
from app.domain.regions import dom_in

EXAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "casbin-examples"
UNKNOWN = "nobody_knows_me"


def _examples_dir() -> Path:
    if not (EXAMPLES / "README.md").is_file():
        pytest.fail(
            f"Casbin conformance data missing: expected {EXAMPLES}/README.md. The examples live beside "
            "the project in ../shared/casbin-examples/ (see DESIGN.md §5); clone the project next to it."
        )
    return EXAMPLES


def _pairs() -> list[tuple[str, str]]:
    readme = _examples_dir() / "README.md"
    pairs = []
    for row in re.findall(
        r"^\|\s*(\S+\.conf)\s*\|\s*(.+?)\s*\|\s*$", readme.read_text(encoding="utf-8"), re.M
    ):
        model, policies = row
        pairs.extend((model, policy.strip()) for policy in policies.split(","))
    return pairs


def _oracle(model_path: Path, policy_path: Path) -> casbin.Enforcer:
    e = casbin.Enforcer(str(model_path), str(policy_path))
    if e.get_model()["g"] is not None and len(e.get_model()["g"]["g"].tokens) > 2:
        # The oracle at its best (DESIGN.md §5): no per-name pattern matching in the domain manager.
        e.get_named_role_manager("g").matching_func = None
    return e


def _requests(model_text: str, rows: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """Every combination of values the policy file uses for each request field, plus unknowns."""
    model = compile_model(model_text)
    p_values = {
        name: {row[1 + i] for row in rows if row[0] == "p"} for i, name in enumerate(model.policy_fields)
    }
    g_rows = [row[1:] for row in rows if row[0] == "g"]
    values: list[list[str]] = []
    for name in model.request_fields:
        seen = set(p_values.get(name, ()))
        if name == "sub":
            seen |= {v for g in g_rows for v in g[:2]}
        if name == "dom":
            seen |= {g[2] for g in g_rows if len(g) > 2}
        values.append([*sorted(seen), UNKNOWN])
    return list(itertools.product(*values))


def test_readme_lists_the_mandatory_forms() -> None:
    pairs = _pairs()
    assert len(pairs) >= 7, pairs
    models = {model for model, _ in pairs}
    assert {"rbac_model.conf", "rbac_with_domains_model.conf", "rbac_with_deny_model.conf"} <= models


@pytest.mark.parametrize(
    ("model_name", "policy_name"), _pairs() if EXAMPLES.is_dir() else [("missing", "missing")]
)
def test_same_decisions_as_casbin(model_name: str, policy_name: str) -> None:
    base = _examples_dir()
    model_path, policy_path = base / model_name, base / policy_name
    oracle = _oracle(model_path, policy_path)
    ours = IndexedEnforcer.from_files(model_path, policy_path)
    rows = read_policy_lines(policy_path)
    requests = _requests(model_path.read_text(encoding="utf-8"), rows)
    assert len(requests) > 20

    differences = [
        (request, expected)
        for request in requests
        if (expected := oracle.enforce(*request)) != ours.enforce(*request)
    ]
    assert not differences, (
        f"{len(differences)} of {len(requests)} differ, e.g. (request, casbin): {differences[:5]}"
    )
    assert ours.enforce_many(requests) == [oracle.enforce(*r) for r in requests]
    for request in requests:
        explanation = ours.explain(*request)
        assert explanation.allowed == ours.enforce(*request)
        if explanation.allowed and ours.model.effect.name != "DENY_OVERRIDE":
            assert explanation.allow, request


@pytest.mark.parametrize(
    "policy_name",
    [
        "rbac_with_domains_policy.csv",
        "rbac_with_domains_policy2.csv",
        "rbac_with_hierarchy_with_domains_policy.csv",
    ],
)
def test_domain_role_without_policy_domain_is_refused(policy_name: str) -> None:
    base = _examples_dir()
    model_path = base / "rbac_with_domains_without_policy_matcher.conf"
    oracle = casbin.Enforcer(str(model_path), str(base / policy_name))
    with pytest.raises(RuntimeError, match="invalid policy size"):
        oracle.enforce("alice", "domain1", "data1", "read")

    with pytest.raises(PolicyShapeError, match=r"has 4 fields .* p = sub, obj, act has 3"):
        IndexedEnforcer.from_files(model_path, base / policy_name)


def test_domain_role_without_policy_domain_fits_a_matching_policy() -> None:
    # The model itself is a valid form (role domain from the request only); only the pair was wrong.
    model_path = _examples_dir() / "rbac_with_domains_without_policy_matcher.conf"
    rows = [
        ("p", "admin", "data1", "read"),
        ("g", "alice", "admin", "domain1"),
        ("g", "bob", "admin", "domain2"),
    ]
    ours = IndexedEnforcer(load_model(model_path))
    ours.load(rows)
    oracle = casbin.Enforcer(str(model_path))
    oracle.get_named_role_manager("g").matching_func = None
    for row in rows:
        (oracle.add_policy if row[0] == "p" else oracle.add_grouping_policy)(*row[1:])
    for request in itertools.product(
        ["alice", "bob", "admin", UNKNOWN], ["domain1", "domain2"], ["data1"], ["read"]
    ):
        assert ours.enforce(*request) == oracle.enforce(*request), request


def test_failed_load_leaves_nothing_behind() -> None:
    ours = IndexedEnforcer(load_model(_examples_dir() / "rbac_model.conf"))
    with pytest.raises(PolicyShapeError):
        ours.load([("p", "alice", "data1", "read"), ("g", "alice", "admin"), ("p", "too", "short")])
    assert ours.policy_count == 0
    assert ours.grouping_count == 0
    assert list(ours.lines()) == []


def test_role_hierarchy_stops_at_pycasbins_depth() -> None:
    # pycasbin's role manager finds a role at most 9 links away (max_hierarchy_level=10).
    model_path = _examples_dir() / "rbac_model.conf"
    oracle = casbin.Enforcer(str(model_path))
    ours = IndexedEnforcer(load_model(model_path))
    for i in range(12):
        oracle.add_grouping_policy(f"u{i}", f"u{i + 1}")
        ours.add_grouping("g", (f"u{i}", f"u{i + 1}"))
    for j in range(13):
        oracle.add_policy(f"u{j}", "data", "read")
        ours.add_policy("p", (f"u{j}", "data", "read"))
        assert ours.enforce("u0", "data", "read") == oracle.enforce("u0", "data", "read") == (j <= 9), j
        oracle.remove_policy(f"u{j}", "data", "read")
        assert ours.remove_policy("p", (f"u{j}", "data", "read"))


@pytest.mark.parametrize(
    "model_name", ["rbac_model.conf", "rbac_with_deny_model.conf", "rbac_with_not_deny_model.conf"]
)
def test_empty_policy_is_casbins_special_case(model_name: str) -> None:
    # With no p line at all pycasbin matches one virtual line of empty strings.
    model_path = _examples_dir() / model_name
    oracle = casbin.Enforcer(str(model_path))
    ours = IndexedEnforcer(load_model(model_path))
    oracle.add_grouping_policy("alice", "")
    ours.add_grouping("g", ("alice", ""))
    for request in itertools.product(["", "alice", "bob"], ["", "data1"], ["", "read"]):
        assert ours.enforce(*request) == oracle.enforce(*request), request


@pytest.mark.parametrize(
    ("matcher", "effect", "complaint"),
    [
        ("g(r.sub, p.sub) && keyMatch(r.obj, p.obj) && r.act == p.act", None, "keyMatch"),
        ("g(r.sub, p.sub) && r.obj == p.obj || r.act == p.act", None, "'||'"),
        ("g(r.sub, p.sub) && !(r.obj == p.obj)", None, "'!'"),
        ("g(r.sub, p.sub) && r.obj == 'data1' && r.act == p.act", None, "'data1'"),
        ("g(p.sub, r.sub) && r.obj == p.obj", None, "must be a request field"),
        ("g(r.sub, p.sub, r.obj) && r.act == p.act", None, "3 arguments but g has 2"),
        ("r.sub == p.sub && r.obj == p.obj && r.act == p.act", "priority(p.eft) || deny", "policy effect"),
        ("dom_in(p.obj, r.obj) && r.sub == p.sub", None, "must be a request field"),
        ("g(r.sub, p.sub) && r.sub == p.sub", None, "role field"),
    ],
)
def test_unsupported_models_are_refused_by_name(matcher: str, effect: str | None, complaint: str) -> None:
    text = (
        "[request_definition]\nr = sub, obj, act\n[policy_definition]\np = sub, obj, act\n"
        "[role_definition]\ng = _, _\n[policy_effect]\n"
        f"e = {effect or 'some(where (p.eft == allow))'}\n[matchers]\nm = {matcher}\n"
    )
    with pytest.raises(UnsupportedModel, match=re.escape(complaint)):
        compile_model(text)


_SHAPES = {
    # plain ACL, no roles
    "acl": (
        "r = sub, obj, act",
        "p = sub, obj, act",
        None,
        "r.sub == p.sub && p.obj == r.obj && r.act == p.act",
    ),
    # fields in another order, a window written as one chained comparison
    "window": (
        "r = at, sub, act",
        "p = act, sub, nbf, exp",
        "g = _, _",
        "g(r.sub, p.sub) && r.act == p.act && p.nbf <= r.at < p.exp",
    ),
    # one policy field pinned by two request fields, and ancestry on a non-role domain
    "two_bindings": (
        "r = sub, dom, home",
        "p = sub, dom",
        None,
        "r.sub == p.sub && dom_in(r.dom, p.dom) && dom_in(r.home, p.dom)",
    ),
}
_SHAPE_ROWS = [
    ("p", "alice", "data", "read"),
    ("p", "bob", "data", "write"),
    ("p", "read", "alice", "1", "3"),
    ("p", "write", "staff", "2", "2"),
    ("p", "write", "staff", "0", "9"),
    ("g", "bob", "staff"),
    ("p", "alice", "cn/44"),
    ("p", "bob", "cn"),
]


@pytest.mark.parametrize("shape", sorted(_SHAPES))
def test_other_supported_shapes_match_casbin(shape: str) -> None:
    r, p, g, m = _SHAPES[shape]
    role = f"[role_definition]\n{g}\n" if g else ""
    text = (
        f"[request_definition]\n{r}\n[policy_definition]\n{p}\n{role}"
        f"[policy_effect]\ne = some(where (p.eft == allow))\n[matchers]\nm = {m}\n"
    )
    row_size = {"p": 1 + len(p.split(",")), "g": 3 if g else -1}
    rows = [row for row in _SHAPE_ROWS if len(row) == row_size[row[0]]]
    ours = IndexedEnforcer(compile_model(text))
    ours.load(rows)
    oracle = casbin.Enforcer(casbin.Enforcer.new_model(text=text))
    oracle.add_function("dom_in", dom_in)
    for row in rows:
        (oracle.add_policy if row[0] == "p" else oracle.add_grouping_policy)(*row[1:])
    values = sorted({v for row in _SHAPE_ROWS for v in row[1:]} | {"cn/44/01", "cn/4401", "x"})
    n_request = len(r.split(","))
    allowed = 0
    for request in itertools.product(values, repeat=n_request):
        expected = oracle.enforce(*request)
        assert ours.enforce(*request) == expected, request
        allowed += expected
    assert allowed > 0
