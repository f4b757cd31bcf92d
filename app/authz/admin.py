"""The admin plane: may this person do `act` on `obj` in tenant T? (policies/admin.conf)

A person's role links are few, so each request builds a small indexed enforcer over the built-in
role table plus that person's links instead of keeping every person's links in every worker.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

from app.authz.engine import IndexedEnforcer
from app.authz.model import CompiledModel, load_model, read_policy_lines
from app.authz.policy_state import POLICIES_DIR
from app.domain.regions import dom_in

# Administrators outrank operators, approvers and auditors; a person may hand out only roles at or
# below their own best rank, and only inside their own subtree.
ROLE_RANK = {
    "province_admin": 3,
    "city_admin": 2,
    "county_admin": 1,
    "operator": 0,
    "approver": 0,
    "auditor": 0,
}


@cache
def _model() -> CompiledModel:
    return load_model(POLICIES_DIR / "admin.conf")


@cache
def _role_lines() -> tuple[tuple[str, ...], ...]:
    return tuple(read_policy_lines(POLICIES_DIR / "admin_roles.csv"))


class AdminGuard:
    def __init__(self, subject: str, assignments: Iterable[tuple[str, str]]) -> None:
        """`assignments` are (role, tenant path) pairs held by `subject`."""
        self.subject = subject
        self.assignments = tuple(assignments)
        self._enforcer = IndexedEnforcer(_model())
        self._enforcer.load(
            [*_role_lines(), *(("g", subject, role, path) for role, path in self.assignments)]
        )

    def can(self, act: str, obj: str, tenant_path: str) -> bool:
        return self._enforcer.enforce(self.subject, tenant_path, obj, act)

    def scopes(self) -> list[str]:
        """The tenant paths at the top of this person's reach (their subtrees cover all they see)."""
        paths = sorted({path for _, path in self.assignments}, key=lambda p: (p.count("/"), p))
        return [p for i, p in enumerate(paths) if not any(dom_in(p, q) for q in paths[:i])]

    def may_assign(self, role: str, tenant_path: str) -> bool:
        """Nobody grants a role above their own or outside their subtree."""
        return any(
            ROLE_RANK[role] <= ROLE_RANK[held] and ROLE_RANK[held] > 0 and dom_in(tenant_path, path)
            for held, path in self.assignments
        )
