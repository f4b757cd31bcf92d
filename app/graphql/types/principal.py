"""GraphQL types for people (principals), their roles and their personal tokens."""

from __future__ import annotations

from datetime import datetime

import strawberry

from app.graphql.types.me import RoleAssignment
from app.ops.principals.views import PrincipalView, TokenView


@strawberry.type(
    description="A personal access token of a person. Only its first characters are ever shown again; "
    "the token itself is shown once, when it is issued."
)
class PersonalToken:
    id: int = strawberry.field(description="The token's number; give it to revokeToken.")
    prefix: str = strawberry.field(description="The token's first characters, to tell it apart from others.")
    expires_at: datetime | None = strawberry.field(description="When it stops working by itself.")
    revoked_at: datetime | None = strawberry.field(
        description="When it was revoked; empty while it has not been."
    )
    created_at: datetime = strawberry.field(description="When it was issued.")
    one_time: bool = strawberry.field(
        description="True for an enrolment token: it only obtains its owner's own token with "
        "issueToken, once, and is revoked by doing so."
    )

    @classmethod
    def from_view(cls, view: TokenView) -> PersonalToken:
        return cls(
            id=view.id,
            prefix=view.prefix,
            expires_at=view.expires_at,
            revoked_at=view.revoked_at,
            created_at=view.created_at,
            one_time=view.one_time,
        )


@strawberry.type(
    description="A person who signs in with a personal token: administrator, operator, approver or auditor."
)
class Principal:
    name: str = strawberry.field(description="Login name, unique on the platform.")
    display_name: str = strawberry.field(description="The person's name as shown to others.")
    active: bool = strawberry.field(
        description="False once the person was deactivated: none of their tokens work any more."
    )
    version: int = strawberry.field(
        description="Goes up by one with every change to the person or their roles."
    )
    created_at: datetime = strawberry.field(description="When the person was added.")
    created_by: str | None = strawberry.field(
        description="Login name of who added them; empty when they were created from the command line."
    )
    roles: list[RoleAssignment] = strawberry.field(
        description="The roles they hold in departments within your reach (all of them, if this is you)."
    )
    tokens: list[PersonalToken] = strawberry.field(
        description="Their tokens, oldest first, including expired and revoked ones."
    )

    @classmethod
    def from_view(cls, view: PrincipalView) -> Principal:
        return cls(
            name=view.name,
            display_name=view.display_name,
            active=view.active,
            version=view.version,
            created_at=view.created_at,
            created_by=view.created_by,
            roles=[RoleAssignment(role=role, tenant_path=path) for role, path in view.roles],
            tokens=[PersonalToken.from_view(t) for t in view.tokens],
        )


@strawberry.type(description="A token just issued. Store it now: it cannot be shown again.")
class NewToken:
    token: str = strawberry.field(
        description="The bearer token itself (send it as Authorization: Bearer ...)."
    )
    prefix: str = strawberry.field(description="Its first characters, as lists will show it from now on.")
    expires_at: datetime = strawberry.field(description="When it stops working by itself.")
    one_time: bool = strawberry.field(
        description="True for an enrolment token: hand it to its owner, who obtains their own token "
        "with it (issueToken) before it expires; it does nothing else."
    )
