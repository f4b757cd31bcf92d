"""The indexed enforcer: Casbin's decisions from a few hash lookups instead of a policy scan.

`casbin.Enforcer` evaluates the matcher against every policy line (milliseconds at a thousand
lines, seconds at a hundred thousand). `IndexedEnforcer` compiles the same model
(`app.authz.model.compile_model`) and keeps the lines in a dict keyed by the policy fields the
matcher binds to the request (for the business plane: subject, grant domain, card service). A
request enumerates the few keys it could match -- the subject and its roles, times the ancestors
of the request domains, times the exact values -- and checks the remaining comparisons (the
validity window) on the lines found. The cost depends on role count and tree depth, never on
the number of lines; adding or removing a line touches one bucket.

Casbin semantics reproduced here (pycasbin 2.8.0, read from its source and checked by the
conformance and differential tests):

- `g(x, x, ...)` is always true: a subject is its own role, linked or not.
- Roles are transitive, at most `MAX_ROLE_EDGES` (9) links deep, cycles allowed.
- With domains, only links in the request's domain count; with ancestry matching
  (`add_named_domain_matching_func("g", dom_in)`) the links of every ancestor-or-self domain of
  the request domain count, merged into one graph, so a chain may mix links of different levels.
- A line's effect is its `eft` field: "allow", "deny", anything else matches but decides nothing;
  without an `eft` field every line allows.
- With no policy lines at all, Casbin evaluates the matcher once with every policy field "" and
  treats a match as allow; the "!some(deny)" effect then allows everything.
- Lines form a set: adding a present line or removing an absent one changes nothing and returns
  False, as Casbin's `add_policy`/`remove_policy` do. (Casbin's file adapter keeps duplicate
  lines of a file; they never change a decision.)

The enforcer takes no locks: apply changes from the thread (event loop) that checks.

One job in one module (~550 lines): the index, the candidate keys a request enumerates, and the
business plane's shortcuts (`services_for`, `subjects_for`) all read and write the same buckets and
change together; the role graph they consult is app/authz/role_links.py.
"""

from __future__ import annotations

import operator
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import product
from pathlib import Path

from app.authz.model import (
    CompiledModel,
    Effect,
    KeyField,
    PolicyShapeError,
    RequestShapeError,
    UnsupportedModel,
    load_model,
    read_policy_lines,
)
from app.authz.role_links import RoleLinks
from app.domain.regions import ancestor_paths, dom_in

Line = tuple[str, ...]
Candidates = Callable[[Sequence[str], list[str]], Sequence[str]]

_SMALL_BUCKET = 16
"""Lines sharing one key are kept in a tuple up to this many, then in an insertion-ordered dict
(O(1) add/remove/membership when many grants share subject, domain and service)."""

_BUSINESS_REQUEST = ("sub", "sdom", "dom", "svc", "at")


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why a request was decided the way it was.

    `allow` and `deny` are the matching lines (whole policy lines, in the model's field order);
    `inactive` the allowing lines that match the request's key (subject or role, domain, exact
    fields) but fail a comparison -- for the business plane, grants outside their validity window
    (blocks outside theirs are left out: they decide nothing). `roles` are the subject and the
    roles it holds for this request.
    """

    allowed: bool
    allow: tuple[Line, ...]
    deny: tuple[Line, ...]
    inactive: tuple[Line, ...]
    roles: tuple[str, ...]
    policy_fields: tuple[str, ...]

    def column(self, field: str, lines: Iterable[Line] | None = None) -> tuple[str, ...]:
        """One field of `lines` (default: the allowing lines), e.g. `column("gid")`."""
        i = self.policy_fields.index(field)
        return tuple(line[i] for line in (self.allow if lines is None else lines))


class IndexedEnforcer:
    """Decides requests exactly as `casbin.Enforcer` would for a supported model.

    Build it from a compiled model, `load` the lines, then `enforce`. Requests and policy values
    are strings (Casbin compares them as Python strings; times compare in string order).
    """

    def __init__(self, model: CompiledModel) -> None:
        self.model = model
        self._n_request = len(model.request_fields)
        self._n_policy = len(model.policy_fields)
        key_indexes = tuple(k.policy_index for k in model.keys)
        self._key_of = _key_getter(key_indexes)
        self._candidates = tuple(_candidates(k) for k in model.keys)
        self._conditions = tuple((c.policy_index, c.test, c.request_index) for c in model.conditions)
        self._eft = model.eft_index
        self._effect = model.effect
        self._allow_wins = model.effect is Effect.ALLOW_OVERRIDE
        self._deny_only = model.effect is Effect.DENY_OVERRIDE
        # Strings compared or hashed on every check are interned (shared between lines, and
        # equality becomes an identity test); payload fields such as the grant id are not.
        used = {*key_indexes, *(c.policy_index for c in model.conditions)}
        if model.eft_index is not None:
            used.add(model.eft_index)
        self._intern_mask = tuple(i in used for i in range(self._n_policy))
        self._index: dict[tuple[str, ...], tuple[Line, ...] | dict[Line, None]] = {}
        self._policy_count = 0
        self._links = (
            RoleLinks(tree=model.role is not None and model.role.domain_tree) if model.role_arity else None
        )
        self._business = _business_positions(model)
        self._svc_counts: dict[str, int] = {}
        self._by_dom_svc: dict[tuple[str, str], set[str]] | None = None

    @classmethod
    def from_files(
        cls, model_path: str | Path, *policy_paths: str | Path, domain_matching: str | None = "auto"
    ) -> IndexedEnforcer:
        """A model .conf plus policy CSV files, read as pycasbin reads them."""
        enforcer = cls(load_model(model_path, domain_matching))
        for path in policy_paths:
            enforcer.load(read_policy_lines(path))
        return enforcer

    # --- decisions ---------------------------------------------------------------------------

    def enforce(self, *request: str) -> bool:
        self._check_shape(request)
        if not self._policy_count:
            return self._decide_without_policy(request)
        return self._decide(request, self._roles(request))

    def _check_shape(self, request: Sequence[str]) -> None:
        if len(request) != self._n_request:
            raise RequestShapeError(
                f"request has {len(request)} values, the model expects "
                f"{self._n_request} ({', '.join(self.model.request_fields)})"
            )

    def enforce_many(self, requests: Iterable[Sequence[str]]) -> list[bool]:
        return [self.enforce(*request) for request in requests]

    def _decide(self, request: Sequence[str], roles: list[str]) -> bool:
        # A field with no candidate makes the product empty: nothing matches.
        lists = [candidates(request, roles) for candidates in self._candidates]
        index = self._index
        conditions = self._conditions
        eft = self._eft
        allow_wins = self._allow_wins
        allowed = False
        for key in product(*lists):
            bucket = index.get(key)
            if bucket is None:
                continue
            for line in bucket:
                for p, test, r in conditions:
                    if not test(line[p], request[r]):
                        break
                else:
                    effect = "allow" if eft is None else line[eft]
                    if effect == "allow":
                        if allow_wins:
                            return True
                        allowed = True
                    elif effect == "deny" and not allow_wins:
                        return False
        return allowed or self._deny_only

    def _decide_without_policy(self, request: Sequence[str]) -> bool:
        # pycasbin's special case: one virtual line of empty strings, a match counts as allow.
        if self._effect is Effect.DENY_OVERRIDE:
            return True
        return self._line_matches(request, ("",) * self._n_policy, self._roles(request))

    def _line_matches(self, request: Sequence[str], line: Line, roles: list[str]) -> bool:
        for key, candidates in zip(self.model.keys, self._candidates, strict=True):
            if line[key.policy_index] not in candidates(request, roles):
                return False
        return all(test(line[p], request[r]) for p, test, r in self._conditions)

    def _roles(self, request: Sequence[str]) -> list[str]:
        role = self.model.role
        if role is None:
            return []
        links = self._links
        if links is None:
            return [request[role.user]]
        return links.roles(request[role.user], "" if role.domain is None else request[role.domain])

    def explain(self, *request: str) -> Explanation:
        """The decision with the lines behind it (all of them, not just the first one Casbin saw)."""
        self._check_shape(request)
        roles = self._roles(request)
        allow: list[Line] = []
        deny: list[Line] = []
        inactive: list[Line] = []
        lists = [candidates(request, roles) for candidates in self._candidates]
        for key in product(*lists):
            for line in self._index.get(key, ()):
                effect = "allow" if self._eft is None else line[self._eft]
                if all(test(line[p], request[r]) for p, test, r in self._conditions):
                    if effect == "allow":
                        allow.append(line)
                    elif effect == "deny":
                        deny.append(line)
                elif effect == "allow":
                    inactive.append(line)
        # The decision follows from the matching lines found (no second pass, as in `_decide`).
        if not self._policy_count:
            allowed = self._decide_without_policy(request)
        elif self._allow_wins:
            allowed = bool(allow)
        else:
            allowed = not deny and (bool(allow) or self._deny_only)
        return Explanation(
            allowed=allowed,
            allow=tuple(allow),
            deny=tuple(deny),
            inactive=tuple(inactive),
            roles=tuple(roles),
            policy_fields=self.model.policy_fields,
        )

    # --- business-plane queries --------------------------------------------------------------

    def services_for(self, sub: str, sdom: str, dom: str, at: str) -> set[str]:
        """Card services `sub` (located in `sdom`) may perform on cards of `dom` at time `at`.

        Exactly the services `svc` among those named by some policy line for which
        `enforce(sub, sdom, dom, svc, at)` holds (a service no line names is never allowed).
        """
        pos = self._business_or_refuse("services_for")
        request = [""] * self._n_request
        request[pos.sub], request[pos.sdom], request[pos.dom], request[pos.at] = sub, sdom, dom, at
        roles = self._roles(request)
        found = set()
        for svc in list(self._svc_counts):
            request[pos.svc] = svc
            if self._decide(request, roles):
                found.add(svc)
        return found

    def subjects_for(self, dom: str, svc: str, at: str) -> set[str]:
        """Policy subjects (`outlet:<id>`, `kind:<kind>`) that may perform `svc` on cards of `dom`
        at time `at` on their own lines: an allow line whose domain is an ancestor-or-self of
        `dom` and whose window holds at `at`, and no such deny line for the same subject.

        Roles are not expanded (a block of `outlet:7` does not remove `kind:...`, and outlets
        reached through a kind are not listed); pair with `enforce` for one outlet's answer.
        """
        pos = self._business_or_refuse("subjects_for")
        by_dom_svc = self._dom_svc_index()
        subjects: set[str] = set()
        for d in ancestor_paths(dom):
            subjects.update(by_dom_svc.get((d, svc), ()))
        request = [""] * self._n_request
        request[pos.sdom], request[pos.dom], request[pos.svc], request[pos.at] = dom, dom, svc, at
        found = set()
        for subject in subjects:
            request[pos.sub] = subject
            if self._decide(request, [subject]):
                found.add(subject)
        return found

    def _business_or_refuse(self, what: str) -> _BusinessPositions:
        if self._business is None:
            raise UnsupportedModel(
                f"{what} needs the business model form (r = sub, sdom, dom, svc, at with "
                "g(r.sub, p.sub, r.sdom), dom_in on p.dom and r.svc == p.svc)"
            )
        return self._business

    def _dom_svc_index(self) -> dict[tuple[str, str], set[str]]:
        # Built on first use (compliance queries), then kept up to date by add/remove.
        if self._by_dom_svc is None:
            pos = self._business_or_refuse("subjects_for")
            index: dict[tuple[str, str], set[str]] = {}
            for key in self._index:
                index.setdefault((key[pos.key_dom], key[pos.key_svc]), set()).add(key[pos.key_sub])
            self._by_dom_svc = index
        return self._by_dom_svc

    # --- changes -----------------------------------------------------------------------------

    def add_policy(self, ptype: str, rule: Sequence[str]) -> bool:
        line = self._policy_line(ptype, rule)
        key = self._key_of(line)
        bucket = self._index.get(key)
        if bucket is None:
            self._index[key] = (line,)
            self._key_added(key)
        elif line in bucket:
            return False
        elif type(bucket) is tuple:
            self._index[key] = (
                (*bucket, line) if len(bucket) < _SMALL_BUCKET else dict.fromkeys((*bucket, line))
            )
        else:
            bucket[line] = None  # type: ignore[index]
        self._policy_count += 1
        self._count_service(line, 1)
        return True

    def remove_policy(self, ptype: str, rule: Sequence[str]) -> bool:
        line = self._policy_line(ptype, rule)
        key = self._key_of(line)
        bucket = self._index.get(key)
        if bucket is None or line not in bucket:
            return False
        if type(bucket) is tuple:
            rest = tuple(x for x in bucket if x != line)
            if rest:
                self._index[key] = rest
            else:
                del self._index[key]
                self._key_removed(key)
        else:
            del bucket[line]  # type: ignore[arg-type]
            if len(bucket) <= _SMALL_BUCKET // 2:
                self._index[key] = tuple(bucket)
        self._policy_count -= 1
        self._count_service(line, -1)
        return True

    def has_policy(self, ptype: str, rule: Sequence[str]) -> bool:
        line = self._policy_line(ptype, rule)
        return line in self._index.get(self._key_of(line), ())

    def add_grouping(self, gtype: str, rule: Sequence[str]) -> bool:
        return self._role_links(gtype).add(*self._grouping_line(gtype, rule))

    def remove_grouping(self, gtype: str, rule: Sequence[str]) -> bool:
        return self._role_links(gtype).remove(*self._grouping_line(gtype, rule))

    def has_grouping(self, gtype: str, rule: Sequence[str]) -> bool:
        return self._role_links(gtype).has(*self._grouping_line(gtype, rule))

    def load(self, lines: Iterable[Sequence[str]]) -> int:
        """Add CSV-like rows `("p", ...)` / `("g", ...)`; all or nothing. Returns lines added."""
        added: list[Sequence[str]] = []
        try:
            for row in lines:
                if not row:
                    raise PolicyShapeError("empty policy row")
                kind = row[0]
                if kind == "p":
                    is_new = self.add_policy(kind, row[1:])
                elif kind == "g":
                    is_new = self.add_grouping(kind, row[1:])
                else:
                    raise PolicyShapeError(
                        f"unknown line type {kind!r} in {_show_row(row)} (expected p or g)"
                    )
                if is_new:
                    added.append(row)
        except BaseException:
            for row in reversed(added):
                if row[0] == "p":
                    self.remove_policy(row[0], row[1:])
                else:
                    self.remove_grouping(row[0], row[1:])
            raise
        return len(added)

    def state(self) -> tuple:
        """The index as builtin containers (a snapshot writes them with marshal: app/authz/snapshot.py).
        The compliance queries' index by domain and service is left out: it is rebuilt on first use."""
        links = None if self._links is None else self._links.state()
        return self._index, self._policy_count, self._svc_counts, links

    def restore(self, state: tuple) -> None:
        """Take the index back from `state`, the `state()` of an enforcer of the same model."""
        self._index, self._policy_count, self._svc_counts, links = state
        self._by_dom_svc = None
        if links is not None:
            self._links.restore(*links)

    def lines(self) -> Iterator[tuple[str, ...]]:
        """Every line as a CSV-like row, policy lines first."""
        for bucket in self._index.values():
            for line in bucket:
                yield ("p", *line)
        if self._links is not None:
            for user, role, domain in self._links.lines():
                yield ("g", user, role, domain) if self.model.role_arity == 3 else ("g", user, role)

    @property
    def policy_count(self) -> int:
        return self._policy_count

    @property
    def grouping_count(self) -> int:
        return self._links.count if self._links is not None else 0

    def _policy_line(self, ptype: str, rule: Sequence[str]) -> Line:
        if ptype != "p":
            raise PolicyShapeError(f"unknown policy type {ptype!r}: the model defines p only")
        if len(rule) != self._n_policy:
            raise PolicyShapeError(
                f"policy line {_show_row(rule)} has {len(rule)} fields but the model's "
                f"p = {', '.join(self.model.policy_fields)} has {self._n_policy} "
                "(pycasbin raises 'invalid policy size' on every request with such a line)"
            )
        if not all(type(v) is str for v in rule):
            raise PolicyShapeError(f"policy line {_show_row(rule)}: every field must be a str")
        intern = sys.intern
        return tuple([intern(v) if keep else v for v, keep in zip(rule, self._intern_mask, strict=True)])

    def _grouping_line(self, gtype: str, rule: Sequence[str]) -> tuple[str, str, str]:
        arity = self.model.role_arity
        if len(rule) != arity:
            raise PolicyShapeError(
                f"grouping line {_show_row(rule)} has {len(rule)} fields but g has {arity} "
                "(user, role" + (", domain)" if arity == 3 else ")")
            )
        if not all(type(v) is str for v in rule):
            raise PolicyShapeError(f"grouping line {_show_row(rule)}: every field must be a str")
        intern = sys.intern
        return intern(rule[0]), intern(rule[1]), intern(rule[2]) if arity == 3 else ""

    def _role_links(self, gtype: str) -> RoleLinks:
        if gtype != "g" or self._links is None:
            defined = "g only" if self._links is not None else "no role definition"
            raise PolicyShapeError(f"unknown grouping type {gtype!r}: the model has {defined}")
        return self._links

    def _key_added(self, key: tuple[str, ...]) -> None:
        if self._by_dom_svc is not None and self._business is not None:
            pos = self._business
            entry = (key[pos.key_dom], key[pos.key_svc])
            self._by_dom_svc.setdefault(entry, set()).add(key[pos.key_sub])

    def _key_removed(self, key: tuple[str, ...]) -> None:
        if self._by_dom_svc is not None and self._business is not None:
            pos = self._business
            entry = (key[pos.key_dom], key[pos.key_svc])
            subjects = self._by_dom_svc.get(entry)
            if subjects is not None:
                subjects.discard(key[pos.key_sub])
                if not subjects:
                    del self._by_dom_svc[entry]

    def _count_service(self, line: Line, delta: int) -> None:
        if self._business is None:
            return
        svc = line[self._business.policy_svc]
        count = self._svc_counts.get(svc, 0) + delta
        if count:
            self._svc_counts[svc] = count
        else:
            del self._svc_counts[svc]


def _key_getter(indexes: tuple[int, ...]) -> Callable[[Line], tuple[str, ...]]:
    if len(indexes) >= 2:
        return operator.itemgetter(*indexes)  # type: ignore[return-value]  # a tuple for 2+ indexes
    if len(indexes) == 1:
        (i,) = indexes
        return lambda line: (line[i],)
    return lambda line: ()


def _candidates(key: KeyField) -> Candidates:
    """The values one key field can take for a request (cheapest closure for its bindings)."""
    if key.role:
        return lambda request, roles: roles
    if key.equal_to:
        first, *more = key.equal_to
        under = key.under
        if not more and not under:
            return lambda request, roles: (request[first],)

        def exact(request: Sequence[str], roles: list[str]) -> Sequence[str]:
            value = request[first]
            if all(request[j] == value for j in more) and all(dom_in(request[j], value) for j in under):
                return (value,)
            return ()

        return exact
    first, *more = key.under
    if not more:
        return lambda request, roles: ancestor_paths(request[first])
    if len(more) == 1:
        (other,) = more
        return lambda request, roles: _common_ancestors(request[first], request[other])
    return lambda request, roles: [
        d for d in ancestor_paths(request[first]) if all(dom_in(request[j], d) for j in more)
    ]


@lru_cache(maxsize=4096)
def _common_ancestors(a: str, b: str) -> tuple[str, ...]:
    """The paths D with dom_in(a, D) and dom_in(b, D), root first.

    Both ancestor lists are prefix chains cut at each "/", so the common ancestors are exactly
    their common leading run: cheaper than calling dom_in on each candidate. Remembered, because
    every partner call asks for its (outlet tenant, card tenant) pair, and there are few pairs.
    """
    if a == b:
        return tuple(ancestor_paths(a))
    common = []
    for x, y in zip(ancestor_paths(a), ancestor_paths(b), strict=False):
        if x != y:
            break
        common.append(x)
    return tuple(common)


@dataclass(frozen=True, slots=True)
class _BusinessPositions:
    sub: int
    sdom: int
    dom: int
    svc: int
    at: int
    key_sub: int
    key_dom: int
    key_svc: int
    policy_svc: int


def _business_positions(model: CompiledModel) -> _BusinessPositions | None:
    """Where the business-plane fields sit, or None if the model does not have that form."""
    if sorted(model.request_fields) != sorted(_BUSINESS_REQUEST) or model.role is None:
        return None
    if model.effect is Effect.DENY_OVERRIDE:
        return None  # there a subject or service without any line is allowed: not enumerable
    r = {name: model.request_index(name) for name in _BUSINESS_REQUEST}
    if model.role.user != r["sub"] or model.role.domain != r["sdom"] or len(model.keys) != 3:
        return None
    positions = {}
    for i, key in enumerate(model.keys):
        if key.role:
            positions["sub"] = i
        elif sorted(key.under) == sorted((r["sdom"], r["dom"])) and not key.equal_to:
            positions["dom"] = i
        elif key.equal_to == (r["svc"],) and not key.under:
            positions["svc"] = i
    if len(positions) != 3:
        return None
    return _BusinessPositions(
        **r,
        key_sub=positions["sub"],
        key_dom=positions["dom"],
        key_svc=positions["svc"],
        policy_svc=model.keys[positions["svc"]].policy_index,
    )


def _show_row(row: Sequence[object]) -> str:
    text = ", ".join(map(str, row))
    return repr(text if len(text) <= 120 else text[:117] + "...")
