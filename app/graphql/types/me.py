"""The calling person."""

from __future__ import annotations

import strawberry

from app.graphql.types.revision import revision_text


@strawberry.type(description="A role a person holds in one department (and everything below it).")
class RoleAssignment:
    role: str = strawberry.field(
        description="province_admin, city_admin, county_admin, operator, approver or auditor."
    )
    tenant_path: str = strawberry.field(description="The department where the role is held.")


@strawberry.type(description="You: the person the bearer token belongs to.")
class Me:
    name: str = strawberry.field(description="Your login name.")
    roles: list[RoleAssignment] = strawberry.field(description="Your roles and where you hold them.")

    @strawberry.field(description="The policy revision the worker answering you has applied.")
    def revision(self, info: strawberry.Info) -> str:
        return revision_text(info.context.policy.revision)
