"""The role graph of a Casbin model with domains: which roles a user holds in a request's domain."""

from __future__ import annotations

from collections.abc import Iterator

from app.authz.model import MAX_ROLE_EDGES
from app.domain.regions import ancestor_paths

_GRAPH_CACHE_SIZE = 65_536
"""Request domains whose role-link graphs are remembered (tenants number a few thousand)."""


class RoleLinks:
    """Grouping lines (`g, user, role[, domain]`) answering "which roles does user hold here".

    Links live in `domain -> user -> tuple of roles`; a model without role domains uses the
    single domain "". With `tree`, a request domain sees the links of all its ancestor-or-self
    domains, exactly like pycasbin's DomainManager with `dom_in` as domain matching function.
    """

    __slots__ = ("_by_domain", "_graphs", "_tree", "count")

    def __init__(self, tree: bool) -> None:
        self._by_domain: dict[str, dict[str, tuple[str, ...]]] = {}
        # request domain -> the link dicts of its ancestor-or-self domains. Valid while no domain
        # gains its first or loses its last link (the dicts themselves change in place).
        self._graphs: dict[str, list[dict[str, tuple[str, ...]]]] = {}
        self._tree = tree
        self.count = 0

    def add(self, user: str, role: str, domain: str) -> bool:
        links = self._by_domain.get(domain)
        if links is None:
            links = self._by_domain[domain] = {}
            self._graphs.clear()
        roles = links.get(user, ())
        if role in roles:
            return False
        links[user] = (*roles, role)
        self.count += 1
        return True

    def remove(self, user: str, role: str, domain: str) -> bool:
        links = self._by_domain.get(domain)
        roles = links.get(user, ()) if links is not None else ()
        if role not in roles:
            return False
        rest = tuple(r for r in roles if r != role)
        if rest:
            links[user] = rest  # type: ignore[index]  # links is not None when role was found
        else:
            del links[user]  # type: ignore[union-attr]
            if not links:
                # Dropping empty domains keeps the ancestor walk in roles() short.
                del self._by_domain[domain]
                self._graphs.clear()
        self.count -= 1
        return True

    def has(self, user: str, role: str, domain: str) -> bool:
        links = self._by_domain.get(domain)
        return links is not None and role in links.get(user, ())

    def roles(self, user: str, domain: str = "") -> list[str]:
        """`user` followed by every role reachable in at most MAX_ROLE_EDGES links."""
        graphs = self._graphs.get(domain)
        if graphs is None:
            graphs = self._graphs_for(domain)
        if not graphs:
            return [user]
        found = [user]
        seen = {user}
        frontier = [user]
        # Breadth first, level by level, so the depth limit cuts where pycasbin's does.
        for _ in range(MAX_ROLE_EDGES):
            step = []
            for u in frontier:
                for g in graphs:
                    for r in g.get(u, ()):
                        if r not in seen:
                            seen.add(r)
                            step.append(r)
            if not step:
                break
            found.extend(step)
            frontier = step
        return found

    def _graphs_for(self, domain: str) -> list[dict[str, tuple[str, ...]]]:
        by_domain = self._by_domain
        if self._tree:
            graphs = [g for d in ancestor_paths(domain) if (g := by_domain.get(d)) is not None]
        else:
            g = by_domain.get(domain)
            graphs = [g] if g is not None else []
        if len(self._graphs) >= _GRAPH_CACHE_SIZE:
            self._graphs.clear()  # requests for ever new domains must not grow it without bound
        self._graphs[domain] = graphs
        return graphs

    def state(self) -> tuple[dict[str, dict[str, tuple[str, ...]]], int]:
        """The links as builtin containers, for a snapshot (app/authz/snapshot.py)."""
        return self._by_domain, self.count

    def restore(self, by_domain: dict[str, dict[str, tuple[str, ...]]], count: int) -> None:
        self._by_domain, self.count = by_domain, count
        self._graphs.clear()

    def lines(self) -> Iterator[tuple[str, str, str]]:
        for domain, links in self._by_domain.items():
            for user, roles in links.items():
                for role in roles:
                    yield user, role, domain
