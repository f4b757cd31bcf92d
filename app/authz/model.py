"""Read a Casbin model and compile its matcher into the shape the indexed enforcer serves.

Casbin evaluates the matcher as an expression against every policy line. The indexed enforcer
(`app.authz.engine`) instead looks lines up by hash, which only works when the matcher is a
conjunction of terms that each say how one policy field relates to the request:

- `g(r.A, p.B)` or `g(r.A, p.B, r.D)`: p.B is one of r.A's roles (in domain r.D);
- `r.X == p.Y` (either order): p.Y is exactly r.X;
- `dom_in(r.X, p.Y)`: p.Y is r.X or one of its ancestors (`app.domain.regions.dom_in`);
- `p.Y < r.X`, `<=`, `>`, `>=`, `!=` (either order, chains allowed): checked on each found line
  (the validity window of a grant).

Policy fields bound by the first three kinds form the lookup key; the comparisons are evaluated on
the few lines a key finds. Anything else (`||`, `!`, constants, keyMatch, eval, several role
types, conditional roles, priority effects) is refused with `UnsupportedModel`, naming the part,
rather than answered differently from Casbin.

The .conf text is read with pycasbin's own parser (`casbin.model.Model`), so sections, comments,
line continuations and the `r.` -> `r_` escaping are exactly what the oracle sees.

One job in one module (~430 lines): reading the matcher's terms, classifying them and checking
that together they are a model the engine serves exactly; split, each part would only make sense
beside the others.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from casbin.model import Model

MAX_ROLE_EDGES = 9
"""pycasbin's role managers are built with max_hierarchy_level=10 and stop their breadth-first
search when the level reaches 0, so a role is found at most 9 links away from the subject."""

DOMAIN_MATCHING_FUNCTIONS = ("dom_in",)
"""Functions the engine knows how to index. `dom_in(a, b)` is `a == b or a.startswith(b + "/")`."""


class UnsupportedModel(ValueError):
    """The model uses a construct the indexed enforcer cannot reproduce exactly."""


class PolicyShapeError(ValueError):
    """A policy or grouping line does not fit the model (pycasbin would fail or misread it)."""


class RequestShapeError(ValueError):
    """A request has a different number of values than `request_definition` declares."""


class Effect(StrEnum):
    """The policy effects the engine supports, named by what they decide."""

    ALLOW_OVERRIDE = "some(where (p_eft == allow))"
    """Allowed iff some matching line allows (Casbin's "allow-override")."""
    ALLOW_AND_DENY = "some(where (p_eft == allow)) && !some(where (p_eft == deny))"
    """Allowed iff some matching line allows and none denies (our "deny-override")."""
    DENY_OVERRIDE = "!some(where (p_eft == deny))"
    """Allowed unless some matching line denies (pycasbin calls this one deny-override)."""


class Form(StrEnum):
    """Which family of Casbin model a compiled model belongs to (for reports and errors)."""

    ACL = "acl"
    RBAC = "rbac"
    RBAC_WITH_DOMAINS = "rbac_with_domains"
    RBAC_WITH_DOMAIN_TREE = "rbac_with_domain_tree"


@dataclass(frozen=True, slots=True)
class RoleTerm:
    """`g(r.user, p.role[, r.domain])`, with the domain matched by ancestry if `domain_tree`."""

    gtype: str
    user: int
    role: int
    domain: int | None
    domain_tree: bool


@dataclass(frozen=True, slots=True)
class KeyField:
    """One policy field of the lookup key and the request fields that pin it down.

    Exactly one of: `role` (the value is one of the subject's roles), a non-empty `equal_to`
    (the value is that request value), or a non-empty `under` (the value is an ancestor-or-self of
    those request values). `equal_to` and `under` may both be set; all of them must hold.
    """

    policy_index: int
    role: bool = False
    equal_to: tuple[int, ...] = ()
    under: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Condition:
    """`p[policy_index] <op> r[request_index]`, checked on every line a key finds."""

    policy_index: int
    op: str
    request_index: int

    @property
    def test(self) -> Callable[[str, str], bool]:
        return _OPERATORS[self.op]


_OPERATORS: dict[str, Callable[[str, str], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "!=": operator.ne,
}
_AST_OPS: dict[type[ast.cmpop], str] = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
}
_FLIPPED = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


@dataclass(frozen=True, slots=True)
class CompiledModel:
    """A Casbin model in the form the indexed enforcer evaluates."""

    text: str
    form: Form
    effect: Effect
    request_fields: tuple[str, ...]
    policy_fields: tuple[str, ...]
    role_arity: int | None
    """Fields of a `g` line (2 or 3), or None when the model has no role definition."""
    eft_index: int | None
    role: RoleTerm | None
    keys: tuple[KeyField, ...]
    conditions: tuple[Condition, ...]
    domain_matching: str | None
    """Name of the function that also matches role-link domains (pycasbin's
    `add_named_domain_matching_func("g", ...)`), or None for exact domains."""

    def request_index(self, name: str) -> int:
        return self.request_fields.index(name)

    def policy_index(self, name: str) -> int:
        return self.policy_fields.index(name)


def load_model(path: str | Path, domain_matching: str | None = "auto") -> CompiledModel:
    """Compile the .conf file at `path` (see `compile_model`)."""
    return compile_model(Path(path).read_text(encoding="utf-8"), domain_matching)


def compile_model(text: str, domain_matching: str | None = "auto") -> CompiledModel:
    """Compile Casbin model text; raise `UnsupportedModel` naming whatever cannot be indexed.

    `domain_matching` says how role links match domains: None for exact equality (pycasbin's
    default), "dom_in" for ancestry (the oracle then needs
    `e.add_named_domain_matching_func("g", dom_in)`). The model text cannot say this, so "auto"
    picks "dom_in" when the role has a domain and the matcher itself uses dom_in: a model that
    matches policy domains by ancestry means its role assignments the same way (ours do).
    """
    m = Model()
    try:
        m.load_model_from_text(text)
    except Exception as exc:  # pycasbin raises bare RuntimeErrors on malformed text
        raise UnsupportedModel(f"cannot read the model: {exc}") from exc
    for sec, name in (
        ("r", "request_definition"),
        ("p", "policy_definition"),
        ("e", "policy_effect"),
        ("m", "matchers"),
    ):
        if m[sec] is None or sec not in m[sec]:
            raise UnsupportedModel(f"the model has no [{name}] {sec} = ...")
        extra = sorted(set(m[sec]) - {sec})
        if extra:
            raise UnsupportedModel(f"several definitions ({', '.join(extra)}) are not supported, only {sec}")

    request_fields = _field_names(m["r"]["r"].tokens, "r_")
    policy_fields = _field_names(m["p"]["p"].tokens, "p_")
    role_arity = _role_arity(m)
    effect = _effect(m["e"]["e"].value)
    terms = _Terms(request_fields, policy_fields, role_arity)
    terms.read(m["m"]["m"].value)

    role = terms.role
    matching = _domain_matching(domain_matching, role, terms.uses_dom_in)
    if role is not None and matching is not None:
        role = RoleTerm(role.gtype, role.user, role.role, role.domain, domain_tree=True)

    if role is None:
        form = Form.ACL
    elif role.domain is None:
        form = Form.RBAC
    elif role.domain_tree or terms.uses_dom_in:
        form = Form.RBAC_WITH_DOMAIN_TREE
    else:
        form = Form.RBAC_WITH_DOMAINS

    eft_index = policy_fields.index("eft") if "eft" in policy_fields else None
    return CompiledModel(
        text=text,
        form=form,
        effect=effect,
        request_fields=request_fields,
        policy_fields=policy_fields,
        role_arity=role_arity,
        eft_index=eft_index,
        role=role,
        keys=terms.key_fields(),
        conditions=tuple(terms.conditions),
        domain_matching=matching,
    )


def _field_names(tokens: list[str], prefix: str) -> tuple[str, ...]:
    names = tuple(t.removeprefix(prefix) for t in tokens)
    if len(set(names)) != len(names):
        raise UnsupportedModel(f"duplicate field names in {prefix[0]} = {', '.join(names)}")
    return names


def _role_arity(m: Model) -> int | None:
    if m["g"] is None:
        return None
    if set(m["g"]) != {"g"}:
        raise UnsupportedModel(f"only one role definition (g) is supported, got {', '.join(sorted(m['g']))}")
    g = m["g"]["g"]
    if g.params_tokens:
        raise UnsupportedModel("conditional role definitions (g = _, _, (...)) are not supported")
    arity = g.value.count("_")
    if arity not in (2, 3):
        raise UnsupportedModel(
            f"g = {g.value}: only 2 (user, role) or 3 (user, role, domain) fields are supported"
        )
    return arity


def _effect(value: str) -> Effect:
    try:
        return Effect(value)
    except ValueError:
        supported = "; ".join(e.value.replace("p_", "p.") for e in Effect)
        raise UnsupportedModel(
            f"policy effect {value.replace('p_', 'p.')!r} is not supported (supported: {supported})"
        ) from None


def _domain_matching(requested: str | None, role: RoleTerm | None, uses_dom_in: bool) -> str | None:
    if requested == "auto":
        return "dom_in" if role is not None and role.domain is not None and uses_dom_in else None
    if requested is None:
        return None
    if requested not in DOMAIN_MATCHING_FUNCTIONS:
        raise UnsupportedModel(f"domain matching function {requested!r} is not supported (only dom_in)")
    if role is None or role.domain is None:
        raise UnsupportedModel(
            f"domain matching with {requested} needs a role with a domain: g(r.sub, p.sub, r.dom)"
        )
    return requested


class _Terms:
    """Walks the matcher and sorts its terms into role, key bindings and conditions."""

    def __init__(
        self, request_fields: tuple[str, ...], policy_fields: tuple[str, ...], role_arity: int | None
    ):
        self.request = {f"r_{name}": i for i, name in enumerate(request_fields)}
        self.policy = {f"p_{name}": i for i, name in enumerate(policy_fields)}
        self.role_arity = role_arity
        self.role: RoleTerm | None = None
        self.equal: dict[int, list[int]] = {}
        self.under: dict[int, list[int]] = {}
        self.conditions: list[Condition] = []
        self.uses_dom_in = False

    def read(self, matcher: str) -> None:
        if re.search(r"\beval\(", matcher):
            raise UnsupportedModel("eval() in the matcher is not supported")
        # The same rewriting pycasbin applies before handing the matcher to simpleeval.
        expr = re.sub(r"!(?!=)", " not ", matcher.replace("&&", " and ").replace("||", " or "))
        try:
            tree = ast.parse(expr.strip(), mode="eval").body
        except SyntaxError as exc:
            raise UnsupportedModel(f"cannot parse the matcher {matcher!r}: {exc.msg}") from None
        for term in _conjuncts(tree):
            self._term(term)

    def _term(self, node: ast.expr) -> None:
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
            if node.func.id == "g":
                self._role(node)
                return
            if node.func.id == "dom_in":
                self._dom_in(node)
                return
            raise UnsupportedModel(
                f"function {node.func.id}() in the matcher is not supported (only g and dom_in)"
            )
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            for left, op, right in zip(operands, node.ops, operands[1:], strict=False):
                self._compare(left, op, right, node)
            return
        if isinstance(node, ast.BoolOp):
            raise UnsupportedModel(f"'||' in the matcher is not supported: {_show(node)}")
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            raise UnsupportedModel(f"'!' in the matcher is not supported: {_show(node)}")
        raise UnsupportedModel(f"matcher term {_show(node)} is not supported")

    def _role(self, node: ast.Call) -> None:
        if self.role is not None:
            raise UnsupportedModel("more than one g(...) term in the matcher is not supported")
        if self.role_arity is None:
            raise UnsupportedModel("the matcher calls g(...) but the model has no [role_definition]")
        if len(node.args) != self.role_arity:
            raise UnsupportedModel(
                f"{_show(node)} has {len(node.args)} arguments but g has {self.role_arity} fields"
            )
        user = self._side(node.args[0], "r", node)
        role = self._side(node.args[1], "p", node)
        domain = self._side(node.args[2], "r", node) if len(node.args) == 3 else None
        self.role = RoleTerm("g", user, role, domain, domain_tree=False)

    def _dom_in(self, node: ast.Call) -> None:
        if len(node.args) != 2:
            raise UnsupportedModel(f"{_show(node)}: dom_in takes 2 arguments")
        r = self._side(node.args[0], "r", node)
        p = self._side(node.args[1], "p", node)
        self.under.setdefault(p, []).append(r)
        self.uses_dom_in = True

    def _compare(self, left: ast.expr, op: ast.cmpop, right: ast.expr, node: ast.expr) -> None:
        symbol = _AST_OPS.get(type(op))
        if symbol is None:
            raise UnsupportedModel(f"operator in {_show(node)} is not supported")
        a, b = self._name(left, node), self._name(right, node)
        if a[0] == b[0]:
            raise UnsupportedModel(f"{_show(node)} must compare a request field with a policy field")
        if a[0] == "r":  # normalise to p.Y <op> r.X
            a, b, symbol = b, a, _FLIPPED[symbol]
        p, r = a[1], b[1]
        if symbol == "==":
            self.equal.setdefault(p, []).append(r)
        else:
            self.conditions.append(Condition(p, symbol, r))

    def _side(self, node: ast.expr, want: str, term: ast.expr) -> int:
        side, index = self._name(node, term)
        if side != want:
            expected = "a request field r.X" if want == "r" else "a policy field p.Y"
            raise UnsupportedModel(f"in {_show(term)}, {_show(node)} must be {expected}")
        return index

    def _name(self, node: ast.expr, term: ast.expr) -> tuple[str, int]:
        if not isinstance(node, ast.Name):
            raise UnsupportedModel(f"in {_show(term)}, {_show(node)} is not a request or policy field")
        if node.id in self.request:
            return "r", self.request[node.id]
        if node.id in self.policy:
            if node.id == "p_eft":
                raise UnsupportedModel("p.eft in the matcher is not supported (it is the effect)")
            return "p", self.policy[node.id]
        raise UnsupportedModel(f"in {_show(term)}, {_show(node)} is not a declared request or policy field")

    def key_fields(self) -> tuple[KeyField, ...]:
        role_field = self.role.role if self.role is not None else None
        if role_field is not None and (role_field in self.equal or role_field in self.under):
            raise UnsupportedModel("the role field of g(...) may not also be compared with == or dom_in")
        bound = sorted({*self.equal, *self.under, *([role_field] if role_field is not None else [])})
        return tuple(
            KeyField(
                policy_index=p,
                role=p == role_field,
                equal_to=tuple(self.equal.get(p, ())),
                under=tuple(self.under.get(p, ())),
            )
            for p in bound
        )


def _conjuncts(node: ast.expr) -> Iterator[ast.expr]:
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
        for value in node.values:
            yield from _conjuncts(value)
    else:
        yield node


def _show(node: ast.expr) -> str:
    return repr(re.sub(r"\b([rp])_", r"\1.", ast.unparse(node)))


def read_policy_lines(path: str | Path) -> list[tuple[str, ...]]:
    """Read a Casbin policy CSV the way pycasbin's FileAdapter does: one line per rule, fields
    separated by top-level commas and stripped, blank lines and `#` lines skipped."""
    rows = []
    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            rows.append(tuple(_split_fields(line)))
    return rows


def _split_fields(line: str) -> list[str]:
    # Commas inside brackets belong to the field (pycasbin allows `abc(def, ghi), jkl`).
    fields, depth, start = [], 0, 0
    for i, c in enumerate(line):
        if c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
        elif c == "," and depth == 0:
            fields.append(line[start:i].strip())
            start = i + 1
    fields.append(line[start:].strip())
    return fields
