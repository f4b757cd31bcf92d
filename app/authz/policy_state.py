"""A worker's in-memory business policy: the indexed enforcer plus ceilings and suspension marks.

It is fed by `PolicyTailer` (load, then every change in log order) and read by `decide`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.authz.engine import IndexedEnforcer
from app.authz.model import load_model, read_policy_lines
from app.store.policy import Change

POLICIES_DIR = Path(__file__).resolve().parents[2] / "policies"
BUILTIN_PREFIX = "builtin:"


@dataclass(frozen=True, slots=True)
class Suspension:
    dom: str
    why: str  # SUSPENDED or ABOVE_CEILING
    gid: str


class BusinessPolicy:
    def __init__(self) -> None:
        self.enforcer = IndexedEnforcer(load_model(POLICIES_DIR / "business.conf"))
        self.enforcer.load(read_policy_lines(POLICIES_DIR / "business_builtin.csv"))
        # (tenant path, outlet kind) -> services that tenant lets its descendants extend.
        self.ceilings: dict[tuple[str, str], frozenset[str]] = {}
        # (subject, service) -> suspended grants that would otherwise apply.
        self.suspensions: dict[tuple[str, str], tuple[Suspension, ...]] = {}

    @property
    def line_count(self) -> int:
        """The policy and grouping lines held in memory (the built-in ones included)."""
        return self.enforcer.policy_count + self.enforcer.grouping_count

    def load(self, lines: list[tuple[str, ...]]) -> None:
        casbin_lines = []
        for line in lines:
            if line[0] in ("p", "g"):
                casbin_lines.append(line)
            else:
                self._apply_own("add", line[0], line[1:])
        self.enforcer.load(casbin_lines)

    def state(self) -> tuple:
        """Everything held, as builtin containers (app/authz/snapshot.py)."""
        suspensions = {
            key: tuple((m.dom, m.why, m.gid) for m in marks) for key, marks in self.suspensions.items()
        }
        return self.enforcer.state(), self.ceilings, suspensions

    def restore(self, state: tuple) -> None:
        """Take back what `state()` gave (by a policy of the same code: the snapshot checks)."""
        enforcer, self.ceilings, suspensions = state
        self.enforcer.restore(enforcer)
        self.suspensions = {key: tuple(Suspension(*m) for m in marks) for key, marks in suspensions.items()}

    def apply(self, change: Change) -> None:
        adding = change.op == "add"
        if change.ptype == "p":
            (self.enforcer.add_policy if adding else self.enforcer.remove_policy)("p", change.rule)
        elif change.ptype == "g":
            (self.enforcer.add_grouping if adding else self.enforcer.remove_grouping)("g", change.rule)
        else:
            self._apply_own(change.op, change.ptype, change.rule)

    def _apply_own(self, op: str, ptype: str, rule: tuple[str, ...]) -> None:
        if ptype == "c":  # c, tenant, kind, "svc svc ..."
            tenant, kind, services = rule
            if op == "add":
                self.ceilings[(tenant, kind)] = frozenset(services.split())
            else:
                self.ceilings.pop((tenant, kind), None)
        elif ptype == "s":  # s, subject, dom, svc, why, gid
            subject, dom, svc, why, gid = rule
            marks = self.suspensions.get((subject, svc), ())
            mark = Suspension(dom, why, gid)
            marks = (*marks, mark) if op == "add" else tuple(m for m in marks if m != mark)
            if marks:
                self.suspensions[(subject, svc)] = marks
            else:
                self.suspensions.pop((subject, svc), None)
