"""Differential tests: the indexed enforcer against casbin.Enforcer on random policies and changes.

Hypothesis draws a tenant tree (paths of depth <= 4 below `cn`, including sibling codes that share
a string prefix such as cn/440000 and cn/4400001), random lines, a random sequence of additions
and removals, and random requests. After every change the oracle is rebuilt from the full policy
(pycasbin's domain role manager mis-deletes a link present in an ancestor and a child domain) and
both engines must agree on every request.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import casbin
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.authz.engine import IndexedEnforcer
from app.authz.model import load_model, read_policy_lines
from app.domain.regions import ancestor_paths, dom_in

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "policies"
EXAMPLES = ROOT.parent / "shared" / "casbin-examples"

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Three levels of codes below cn; each level has a code that is a string prefix of a sibling.
_LEVELS = (("440000", "4400001", "450000"), ("440100", "4401001"), ("440106", "4401061"))
UNIVERSE = ["cn"] + [
    "/".join(("cn", *codes)) for depth in range(1, 4) for codes in itertools.product(*_LEVELS[:depth])
]

TIMES = [
    "0000-01-01T00:00:00Z",
    "2024-01-01T00:00:00Z",
    "2024-06-01T00:00:00Z",
    "2025-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
]
REQUEST_TIMES = [*TIMES, "2024-03-15T12:00:00Z", "2024-12-31T23:59:59Z"]
OUTLETS = ["outlet:1", "outlet:2", "outlet:3", "outlet:4"]
KINDS = ["kind:designated_pharmacy", "kind:designated_hospital", "kind:bank_outlet"]
SERVICES = ["activation", "password_change", "info_inquiry"]

PEOPLE = ["alice", "bob", "carol"]
ROLES = ["province_admin", "city_admin", "county_admin", "operator", "approver", "auditor"]
OBJECTS = ["tenant", "tenant_settings", "outlet", "grant", "ceiling", "principal", "audit"]
ACTIONS = ["read", "write", "approve"]


def oracle(model_path: Path, rows: set[tuple[str, ...]], tree_roles: bool = True) -> casbin.Enforcer:
    """casbin.Enforcer set up as DESIGN.md §5 says, loaded with `rows`."""
    e = casbin.Enforcer(casbin.Enforcer.new_model(text=model_path.read_text(encoding="utf-8")))
    e.add_function("dom_in", dom_in)
    if tree_roles:
        e.add_named_domain_matching_func("g", dom_in)
    if e.get_model()["g"] is not None and len(e.get_model()["g"]["g"].tokens) > 2:
        e.get_named_role_manager("g").matching_func = None
    for row in sorted(rows):
        if row[0] == "p":
            e.add_policy(*row[1:])
        else:
            e.add_grouping_policy(*row[1:])
    return e


@st.composite
def tenant_trees(draw: st.DrawFn) -> list[str]:
    """A random set of tenant paths, closed under ancestors (so it is a tree rooted at cn)."""
    picked = draw(st.sets(st.sampled_from(UNIVERSE[1:]), min_size=1, max_size=6))
    return sorted({a for path in picked for a in ancestor_paths(path)})


def request_domains(tree: list[str]) -> st.SearchStrategy[str]:
    # Mostly the tree's own tenants, sometimes a tenant outside it (a sibling, a deeper path).
    return st.one_of(st.sampled_from(tree), st.sampled_from(UNIVERSE))


def under(domain: str) -> st.SearchStrategy[str]:
    """A path in `domain`'s subtree (or, rarely, anywhere: the near misses matter too)."""
    subtree = st.sampled_from([d for d in UNIVERSE if dom_in(d, domain)])
    return st.one_of(subtree, subtree, subtree, st.sampled_from(UNIVERSE))


def members(rows: set[tuple[str, ...]], role: str, domain: str) -> list[tuple[str, str]]:
    """(`role`, `domain`) and (user, link domain) for everyone with a direct g line to `role`."""
    return sorted({(role, domain)} | {(row[1], row[3]) for row in rows if row[0] == "g" and row[2] == role})


def run_changes(
    data: st.DataObject,
    enforcer: IndexedEnforcer,
    current: set[tuple[str, ...]],
    line: st.SearchStrategy[tuple[str, ...]],
    steps: int,
    check: Callable[[], None],
) -> None:
    """Apply random additions and removals; after each, both engines must agree (`check`)."""
    check()
    for _ in range(steps):
        if current and data.draw(st.booleans(), label="remove"):
            row = data.draw(st.one_of(st.sampled_from(sorted(current)), line), label="removed")
            expected = row in current
            changed = (enforcer.remove_policy if row[0] == "p" else enforcer.remove_grouping)(row[0], row[1:])
            current.discard(row)
        else:
            row = data.draw(line, label="added")
            expected = row not in current
            changed = (enforcer.add_policy if row[0] == "p" else enforcer.add_grouping)(row[0], row[1:])
            current.add(row)
        assert changed == expected, row
        assert set(enforcer.lines()) == current
        check()


def assert_same(ours: IndexedEnforcer, theirs: casbin.Enforcer, requests: list[tuple[str, ...]]) -> None:
    for request in requests:
        expected = theirs.enforce(*request)
        assert ours.enforce(*request) == expected, (request, expected, sorted(ours.lines()))
        assert ours.explain(*request).allowed == expected


# --- business plane -------------------------------------------------------------------------------


@st.composite
def business_case(draw: st.DrawFn):
    tree = draw(tenant_trees())
    # Mostly proper windows [nbf, exp); sometimes empty or inverted ones.
    pair = st.lists(st.sampled_from(TIMES), min_size=2, max_size=2).map(tuple)
    windows = st.one_of(pair.map(sorted).map(tuple), pair.map(sorted).map(tuple), pair)
    grant = st.tuples(
        st.just("p"),
        st.sampled_from(OUTLETS + KINDS),
        st.sampled_from(tree),
        st.sampled_from(SERVICES),
        st.sampled_from(["allow", "allow", "deny"]),
        windows,
        st.sampled_from(["gid:1", "gid:2", "gid:3"]),
    ).map(lambda g: (*g[:5], *g[5], g[6]))
    link = st.one_of(
        st.tuples(st.just("g"), st.sampled_from(OUTLETS), st.sampled_from(KINDS), st.sampled_from(tree)),
        # rarer shapes: kind hierarchies and outlet-to-outlet links
        st.tuples(
            st.just("g"),
            st.sampled_from(KINDS + OUTLETS),
            st.sampled_from(KINDS + OUTLETS),
            st.sampled_from(tree),
        ),
    )
    line = st.one_of(grant, grant, link)
    rows = draw(st.sets(grant, min_size=1, max_size=8)) | draw(st.sets(link, max_size=6))
    anything = st.tuples(
        st.sampled_from([*OUTLETS, *KINDS, "outlet:99"]),
        request_domains(tree),
        request_domains(tree),
        st.sampled_from([*SERVICES, "unknown_service"]),
        st.sampled_from(REQUEST_TIMES),
    )
    grants = sorted(row for row in rows if row[0] == "p")
    # Random requests rarely hit a grant; aim half of them at one (its subject or a member, its
    # subtree, its service, a time at or around its window).
    aimed = (
        [
            st.sampled_from(grants).flatmap(
                lambda g: st.tuples(
                    st.sampled_from(members(rows, g[1], g[2])),
                    under(g[2]),
                    st.just(g[3]),
                    st.sampled_from([g[5], g[5], g[6], *REQUEST_TIMES]),
                ).flatmap(
                    lambda t: st.tuples(
                        st.just(t[0][0]), under(t[0][1]), st.just(t[1]), st.just(t[2]), st.just(t[3])
                    )
                )
            )
        ]
        if grants
        else []
    )
    requests = draw(st.lists(st.one_of(anything, *aimed, *aimed), min_size=6, max_size=12))
    return tree, rows, line, requests


@SETTINGS
@given(case=business_case(), data=st.data())
def test_business_model_matches_casbin(case, data) -> None:
    _tree, rows, line, requests = case
    model_path = POLICIES / "business.conf"
    ours = IndexedEnforcer(load_model(model_path))
    assert ours.load(rows) == len(rows)
    current = set(rows)

    def check() -> None:
        theirs = oracle(model_path, current)
        assert_same(ours, theirs, requests)
        sub, sdom, dom, _, at = requests[0]
        assert ours.services_for(sub, sdom, dom, at) == {
            svc for svc in [*SERVICES, "unknown_service"] if theirs.enforce(sub, sdom, dom, svc, at)
        }
        # subjects_for: each subject on its own lines only, i.e. casbin without the g lines.
        direct = oracle(model_path, {row for row in current if row[0] == "p"})
        for _, _, dom, svc, at in requests[:2]:
            assert ours.subjects_for(dom, svc, at) == {
                s for s in [*OUTLETS, *KINDS] if direct.enforce(s, dom, dom, svc, at)
            }

    run_changes(data, ours, current, line, steps=data.draw(st.integers(0, 4), label="steps"), check=check)


def test_business_builtin_lines() -> None:
    ours = IndexedEnforcer.from_files(POLICIES / "business.conf", POLICIES / "business_builtin.csv")
    ours.add_grouping("g", ("outlet:7", "kind:designated_pharmacy", "cn/440000/440100/440106"))
    ours.add_grouping("g", ("outlet:8", "kind:bank_outlet", "cn/440000/440100"))
    at = "2025-05-01T08:00:00Z"
    assert ours.enforce("outlet:7", "cn/440000/440100/440106", "cn/650000", "activation", at)
    assert not ours.enforce("outlet:7", "cn/440000/440100/440106", "cn/650000", "password_change", at)
    assert not ours.enforce("outlet:8", "cn/440000/440100", "cn/440000", "activation", at)
    explanation = ours.explain("outlet:7", "cn/440000/440100/440106", "cn/440000", "activation", at)
    assert explanation.column("gid") == ("builtin:pharmacy_first_use",)
    # A block by a tenant covers its subtree only.
    block = ("outlet:7", "cn/440000/440100", "activation", "deny", TIMES[0], TIMES[-1], "block:1")
    ours.add_policy("p", block)
    assert not ours.enforce("outlet:7", "cn/440000/440100/440106", "cn/440000/440100", "activation", at)
    assert ours.enforce("outlet:7", "cn/440000/440100/440106", "cn/440000/440300", "activation", at)
    theirs = oracle(POLICIES / "business.conf", set(ours.lines()))
    for dom in [*UNIVERSE, "cn/440000/440300", "cn/650000"]:
        request = ("outlet:7", "cn/440000/440100/440106", dom, "activation", at)
        assert ours.enforce(*request) == theirs.enforce(*request), request


def test_window_boundaries() -> None:
    ours = IndexedEnforcer(load_model(POLICIES / "business.conf"))
    ours.add_policy("p", ("outlet:1", "cn", "activation", "allow", TIMES[1], TIMES[2], "gid:1"))
    assert ours.enforce("outlet:1", "cn", "cn", "activation", TIMES[1])  # nbf == at: valid
    assert not ours.enforce("outlet:1", "cn", "cn", "activation", TIMES[2])  # exp == at: expired
    explanation = ours.explain("outlet:1", "cn", "cn", "activation", TIMES[2])
    assert not explanation.allowed and explanation.column("gid", explanation.inactive) == ("gid:1",)


# --- admin plane ----------------------------------------------------------------------------------


ADMIN_ROLES = {("p", *row[1:]) for row in read_policy_lines(POLICIES / "admin_roles.csv")}


@st.composite
def admin_case(draw: st.DrawFn):
    tree = draw(tenant_trees())
    assignment = st.tuples(
        st.just("g"), st.sampled_from(PEOPLE), st.sampled_from(ROLES), st.sampled_from(tree)
    )
    line = st.one_of(
        assignment,
        assignment,
        # role-to-role links (hierarchy) and direct grants to a person in a subtree
        st.tuples(st.just("g"), st.sampled_from(ROLES), st.sampled_from(ROLES), st.sampled_from(tree)),
        st.tuples(
            st.just("p"),
            st.sampled_from(PEOPLE + ROLES),
            st.sampled_from(tree),
            st.sampled_from(OBJECTS),
            st.sampled_from(ACTIONS),
        ),
        st.sampled_from(sorted(ADMIN_ROLES)),
    )
    rows = draw(st.sets(assignment, min_size=1, max_size=4)) | draw(st.sets(line, max_size=8))
    anything = st.tuples(
        st.sampled_from([*PEOPLE, "operator", "mallory"]),
        request_domains(tree),
        st.sampled_from([*OBJECTS, "unknown_object"]),
        st.sampled_from([*ACTIONS, "delete"]),
    )
    assignments = sorted(row for row in rows if row[0] == "g")
    # Aim half of the requests at an assignment: its holder, somewhere around its tenant.
    aimed = (
        [
            st.sampled_from(assignments).flatmap(
                lambda g: st.tuples(
                    st.just(g[1]), under(g[3]), st.sampled_from(OBJECTS), st.sampled_from(ACTIONS)
                )
            )
        ]
        if assignments
        else []
    )
    requests = draw(st.lists(st.one_of(anything, *aimed, *aimed), min_size=6, max_size=12))
    return rows, line, requests


@SETTINGS
@given(case=admin_case(), data=st.data())
def test_admin_model_matches_casbin(case, data) -> None:
    rows, line, requests = case
    model_path = POLICIES / "admin.conf"
    ours = IndexedEnforcer(load_model(model_path))
    current = set(rows) | ADMIN_ROLES
    ours.load(current)

    def check() -> None:
        assert_same(ours, oracle(model_path, current), requests)

    run_changes(data, ours, current, line, steps=data.draw(st.integers(0, 4), label="steps"), check=check)


def test_admin_role_acts_in_its_subtree_only() -> None:
    ours = IndexedEnforcer.from_files(POLICIES / "admin.conf", POLICIES / "admin_roles.csv")
    ours.add_grouping("g", ("alice", "city_admin", "cn/440000/440100"))
    assert ours.enforce("alice", "cn/440000/440100", "grant", "write")
    assert ours.enforce("alice", "cn/440000/440100/440106", "outlet", "write")
    assert not ours.enforce("alice", "cn/440000", "grant", "write")
    assert not ours.enforce("alice", "cn/440000/4401001", "grant", "write")
    assert not ours.enforce("alice", "cn/440000/440100", "grant", "approve")
    assert not ours.enforce("alice", "cn/440000/440100", "tenant", "write")


# --- plain RBAC with hierarchy and deny (pycasbin's example models) -------------------------------


NAMES = [f"n{i}" for i in range(12)]


@st.composite
def rbac_case(draw: st.DrawFn):
    model = draw(
        st.sampled_from(["rbac_model.conf", "rbac_with_deny_model.conf", "rbac_with_not_deny_model.conf"])
    )
    has_eft = model != "rbac_model.conf"
    # Chains n0 -> n1 -> ... reach past the 9-link limit; random extra links add cycles.
    chain = [("g", NAMES[i], NAMES[i + 1]) for i in range(draw(st.integers(0, 11)))]
    link = st.tuples(st.just("g"), st.sampled_from(NAMES), st.sampled_from(NAMES))
    policy = st.tuples(
        st.just("p"),
        st.sampled_from(NAMES),
        st.sampled_from(["data1", "data2"]),
        st.sampled_from(["read", "write"]),
        *([st.sampled_from(["allow", "deny", "other"])] if has_eft else []),
    )
    line = st.one_of(link, policy, policy)
    rows = set(chain) | draw(st.sets(line, max_size=8))
    request = st.tuples(
        st.sampled_from([*NAMES, "x"]),
        st.sampled_from(["data1", "data2", "x"]),
        st.sampled_from(["read", "write"]),
    )
    return EXAMPLES / model, rows, line, draw(st.lists(request, min_size=6, max_size=12))


@settings(max_examples=80, deadline=None)
@given(case=rbac_case(), data=st.data())
def test_rbac_examples_match_casbin(case, data) -> None:
    model_path, rows, line, requests = case
    ours = IndexedEnforcer(load_model(model_path))
    ours.load(rows)
    current = set(rows)

    def check() -> None:
        assert_same(ours, oracle(model_path, current, tree_roles=False), requests)

    run_changes(data, ours, current, line, steps=data.draw(st.integers(0, 3), label="steps"), check=check)


def test_removing_a_link_held_at_two_levels_keeps_the_other() -> None:
    # The case pycasbin's DomainManager gets wrong incrementally (hence the rebuilt oracle).
    model_path = POLICIES / "admin.conf"
    rows = {
        *ADMIN_ROLES,
        ("g", "alice", "city_admin", "cn/440000"),
        ("g", "alice", "city_admin", "cn/440000/440100"),
    }
    ours = IndexedEnforcer(load_model(model_path))
    ours.load(rows)
    incremental = oracle(model_path, rows)
    request = ("alice", "cn/440000/440100", "grant", "write")
    assert ours.enforce(*request) and incremental.enforce(*request)

    assert ours.remove_grouping("g", ("alice", "city_admin", "cn/440000"))
    incremental.remove_grouping_policy("alice", "city_admin", "cn/440000")
    rebuilt = oracle(model_path, rows - {("g", "alice", "city_admin", "cn/440000")})
    assert ours.enforce(*request) == rebuilt.enforce(*request) is True
    assert incremental.enforce(*request) is False  # pycasbin 2.8.0's mis-delete
    assert not ours.enforce("alice", "cn/440000", "grant", "write")
