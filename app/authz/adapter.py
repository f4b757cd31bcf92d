"""A Casbin adapter over our own `policy_line` table, so stock pycasbin can read the live policy.

The platform itself never goes through Casbin (grants are the source of truth and their lines are
written by the ops layer), but the oracle in tests and any tooling that speaks Casbin's adapter
protocol can. Every write is one transaction that also appends to the policy change log, so
workers tailing the log see it; `remove_policies` removes exactly the listed rules (not the cross
product of their fields, as sqlalchemy-adapter does).
"""

from __future__ import annotations

from collections.abc import Sequence

from casbin import persist
from sqlalchemy import Engine, and_, or_, select

from app.store.policy import CASBIN_PTYPES, ProjectedLine, end_lines_sync, line_rule, log_changes_sync
from app.store.tables import PolicyLine
from app.store.tables.common import utcnow

SOURCE = "adapter"


def _match(ptype: str, rule: Sequence[str]):
    fields = [PolicyLine.ptype == ptype]
    for i in range(7):
        column = getattr(PolicyLine, f"v{i}")
        fields.append(column == rule[i] if i < len(rule) else column.is_(None))
    return and_(*fields)


def _end(connection, line_ids: list[int]) -> None:
    # Removed lines keep their history like the platform's own (the actor is not known here).
    for start in range(0, len(line_ids), 10_000):
        end_lines_sync(connection, line_ids[start : start + 10_000], utcnow(), None)


class TableAdapter(persist.Adapter):
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def load_policy(self, model) -> None:
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(PolicyLine).where(PolicyLine.ptype.in_(CASBIN_PTYPES)).order_by(PolicyLine.id)
            )
            for row in rows:
                # Model.add_policy keeps Casbin's own set semantics and lookup map up to date.
                model.add_policy(row.ptype, row.ptype, list(line_rule(row)))

    def save_policy(self, model) -> bool:
        """Replace every Casbin line with the model's (grant projections included): tooling only."""
        lines = [
            ProjectedLine(ptype, tuple(rule), SOURCE, "")
            for sec in ("p", "g")
            for ptype, assertion in model.model.get(sec, {}).items()
            for rule in assertion.policy
        ]
        with self.engine.begin() as connection:
            old = connection.execute(select(PolicyLine).where(PolicyLine.ptype.in_(CASBIN_PTYPES))).all()
            _end(connection, [r.id for r in old])
            log_changes_sync(connection, "remove", [(r.ptype, line_rule(r)) for r in old])
            if lines:
                connection.execute(PolicyLine.__table__.insert(), [line.row() for line in lines])
            log_changes_sync(connection, "add", [(line.ptype, line.rule) for line in lines])
        return True

    def add_policy(self, sec: str, ptype: str, rule: Sequence[str]) -> None:
        self.add_policies(sec, ptype, [rule])

    def add_policies(self, sec: str, ptype: str, rules: Sequence[Sequence[str]]) -> None:
        lines = [ProjectedLine(ptype, tuple(rule), SOURCE, "") for rule in rules]
        with self.engine.begin() as connection:
            connection.execute(PolicyLine.__table__.insert(), [line.row() for line in lines])
            log_changes_sync(connection, "add", [(ptype, tuple(rule)) for rule in rules])

    def remove_policy(self, sec: str, ptype: str, rule: Sequence[str]) -> bool:
        return self.remove_policies(sec, ptype, [rule])

    def remove_policies(self, sec: str, ptype: str, rules: Sequence[Sequence[str]]) -> bool:
        if not rules:
            return False
        with self.engine.begin() as connection:
            doomed = connection.execute(select(PolicyLine.id).where(or_(*(_match(ptype, r) for r in rules))))
            ids = doomed.scalars().all()
            _end(connection, ids)
            log_changes_sync(connection, "remove", [(ptype, tuple(rule)) for rule in rules])
        return bool(ids)

    def remove_filtered_policy(self, sec: str, ptype: str, field_index: int, *field_values: str) -> bool:
        conditions = [PolicyLine.ptype == ptype]
        for offset, value in enumerate(field_values):
            if value:
                conditions.append(getattr(PolicyLine, f"v{field_index + offset}") == value)
        with self.engine.begin() as connection:
            doomed = connection.execute(select(PolicyLine).where(*conditions)).all()
            if not doomed:
                return False
            _end(connection, [r.id for r in doomed])
            log_changes_sync(connection, "remove", [(r.ptype, line_rule(r)) for r in doomed])
        return True
