"""Mutations on people, their roles and their tokens; each is one use case in app/ops."""

from __future__ import annotations

import strawberry

from app.graphql.types.principal import NewToken, Principal
from app.ops.principals import admin as principal_admin
from app.ops.principals import tokens
from app.ops.principals.credentials import IssuedToken


@strawberry.input(description="A new person with one role, and their one-time enrolment token.")
class CreatePrincipalInput:
    name: str = strawberry.field(description="Login name: 2-64 of a-z, 0-9, '.', '_', '@', '-'.")
    tenant: str = strawberry.field(description="Department where the role is held, e.g. cn/440000/440100.")
    role: str = strawberry.field(
        description="province_admin, city_admin, county_admin, operator, approver or auditor; "
        "at most your own role, and an administrator role must fit the department's level."
    )
    display_name: str | None = strawberry.field(
        default=None, description="The person's name as shown to others (up to 128 characters)."
    )


@strawberry.input(description="A role to give to or take from a person, in one department.")
class RoleInput:
    name: str = strawberry.field(description="The person's login name.")
    tenant: str = strawberry.field(description="The department where the role is held.")
    role: str = strawberry.field(description="The role.")


@strawberry.input(description="Switch a person off for good.")
class DeactivatePrincipalInput:
    name: str = strawberry.field(description="The person's login name (not your own).")
    reason: str = strawberry.field(description="Why, for the audit trail (up to 512 characters).")
    expected_version: int | None = strawberry.field(
        default=None, description="The person's version you saw; refused if they changed since."
    )


@strawberry.input(description="A new token for yourself (nobody obtains a token for another person).")
class IssueTokenInput:
    name: str | None = strawberry.field(
        default=None, description="Your own login name, if you give one; any other is refused."
    )
    days: int | None = strawberry.field(
        default=None,
        description="Days until it expires, 1-366 (default 90, or less: never after the token you call "
        "with, unless that is your one-time enrolment token).",
    )


@strawberry.input(description="The token to revoke, by its number or by its prefix (one of the two).")
class RevokeTokenInput:
    id: int | None = strawberry.field(default=None, description="The token's number.")
    prefix: str | None = strawberry.field(default=None, description="The token's prefix as lists show it.")


@strawberry.type(description="The person just created and their one-time enrolment token.")
class CreatePrincipalPayload:
    principal: Principal = strawberry.field(description="The new person.")
    enrolment_token: NewToken = strawberry.field(
        description="Shown this once only. Hand it to the person: it works for a few hours "
        "(SSC_ENROLMENT_TOKEN_HOURS) and only to obtain their own token with issueToken."
    )


@strawberry.type(description="A new token for a person.")
class IssueTokenPayload:
    principal: Principal = strawberry.field(description="The person the token belongs to.")
    token: NewToken = strawberry.field(description="The token, shown this once only.")


@strawberry.type(description="The person after the change.")
class PrincipalPayload:
    principal: Principal = strawberry.field(description="The person as they are now.")


def _new_token(issued: IssuedToken) -> NewToken:
    return NewToken(
        token=issued.token, prefix=issued.prefix, expires_at=issued.expires_at, one_time=issued.one_time
    )


@strawberry.type
class PrincipalMutations:
    @strawberry.mutation(
        description="Add a person with one role in your part of the tree; returns their one-time "
        "enrolment token once."
    )
    async def create_principal(
        self, info: strawberry.Info, input: CreatePrincipalInput
    ) -> CreatePrincipalPayload:
        view, issued = await info.context.run(
            principal_admin.create_principal,
            name=input.name,
            tenant=input.tenant,
            role=input.role,
            display_name=input.display_name,
            enrolment_hours=info.context.settings.enrolment_token_hours,
        )
        return CreatePrincipalPayload(principal=Principal.from_view(view), enrolment_token=_new_token(issued))

    @strawberry.mutation(description="Give a person you can see a role you may hand out yourself.")
    async def assign_role(self, info: strawberry.Info, input: RoleInput) -> PrincipalPayload:
        view = await info.context.run(
            principal_admin.assign_role,
            name=input.name,
            tenant=input.tenant,
            role=input.role,
        )
        return PrincipalPayload(principal=Principal.from_view(view))

    @strawberry.mutation(
        description="Take a role away. Not from someone above you, and not a person's last role "
        "(deactivate them instead)."
    )
    async def remove_role(self, info: strawberry.Info, input: RoleInput) -> PrincipalPayload:
        view = await info.context.run(
            principal_admin.remove_role,
            name=input.name,
            tenant=input.tenant,
            role=input.role,
        )
        return PrincipalPayload(principal=Principal.from_view(view))

    @strawberry.mutation(
        description="Switch off a person all of whose roles you manage: their tokens are revoked and stop "
        "working at once."
    )
    async def deactivate_principal(
        self, info: strawberry.Info, input: DeactivatePrincipalInput
    ) -> PrincipalPayload:
        view = await info.context.run(
            principal_admin.deactivate_principal,
            name=input.name,
            reason=input.reason,
            expected_version=input.expected_version,
        )
        return PrincipalPayload(principal=Principal.from_view(view))

    @strawberry.mutation(
        description="A new token for yourself, returned once. Called with your one-time enrolment token, "
        "it replaces that token."
    )
    async def issue_token(self, info: strawberry.Info, input: IssueTokenInput) -> IssueTokenPayload:
        view, issued = await info.context.run(
            tokens.issue_token,
            name=input.name,
            days=input.days,
        )
        return IssueTokenPayload(principal=Principal.from_view(view), token=_new_token(issued))

    @strawberry.mutation(
        description="Revoke a token at once: one of your own, or one of a person you manage."
    )
    async def revoke_token(self, info: strawberry.Info, input: RevokeTokenInput) -> PrincipalPayload:
        view = await info.context.run(
            tokens.revoke_token,
            prefix=input.prefix,
            token_id=input.id,
        )
        return PrincipalPayload(principal=Principal.from_view(view))
