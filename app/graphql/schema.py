"""The strawberry schema; `schema.graphql` at the project root is generated from it.

Queries and mutations live one area per module (`queries/<area>.py`, `mutations/<area>.py`) and are
merged here into the root types.
"""

from __future__ import annotations

from datetime import datetime

import strawberry
from graphql import GraphQLError
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.name_converter import NameConverter
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from app.graphql.error_log import log_errors
from app.graphql.errors import CodedMaskErrors
from app.graphql.limits import limit_extensions
from app.graphql.mutations.cards import CardMutations
from app.graphql.mutations.grants import GrantMutations
from app.graphql.mutations.outlets import OutletMutations
from app.graphql.mutations.partner_keys import PartnerKeyMutations
from app.graphql.mutations.principals import PrincipalMutations
from app.graphql.mutations.tenants import TenantMutations
from app.graphql.operation_label import OperationLabel
from app.graphql.queries.cards import CardQueries
from app.graphql.queries.compliance import ComplianceQueries
from app.graphql.queries.grants import GrantQueries
from app.graphql.queries.outlets import OutletQueries
from app.graphql.queries.partner_keys import PartnerKeyQueries
from app.graphql.queries.principals import PrincipalQueries
from app.graphql.queries.tenants import TenantQueries
from app.graphql.subscriptions import Subscription
from app.graphql.times import datetime_scalar
from app.graphql.trusted_documents import TrustedDocuments
from app.settings import Settings

QUERY_AREAS: tuple[type, ...] = (
    TenantQueries,
    PrincipalQueries,
    OutletQueries,
    GrantQueries,
    PartnerKeyQueries,
    CardQueries,
    ComplianceQueries,
)
MUTATION_AREAS: tuple[type, ...] = (
    PrincipalMutations,
    TenantMutations,
    OutletMutations,
    GrantMutations,
    PartnerKeyMutations,
    CardMutations,
)

Query = merge_types("Query", QUERY_AREAS)
Query.__strawberry_definition__.description = (
    "What administrators, operators, approvers and auditors can read, and what partner systems ask "
    "about cards."
)


class RememberingNameConverter(NameConverter):
    """Converts each Python name to its GraphQL name once. strawberry converts every argument's name
    again on every call (three times for a partner's cardStatus), though the answer never changes."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self._names: dict[str, str] = {}

    def apply_naming_config(self, name: str) -> str:
        converted = self._names.get(name)
        if converted is None:
            converted = self._names[name] = super().apply_naming_config(name)
        return converted


class Schema(strawberry.Schema):
    """The schema, logging request errors our way (app/graphql/error_log.py) instead of strawberry's,
    which logs every refusal with a traceback and an excerpt of the query text."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        log_errors(errors, execution_context)


def build_schema(settings: Settings | None = None) -> Schema:
    """The schema, its trusted partner documents registered (`schema.trusted_documents`)."""
    mutation = None
    if MUTATION_AREAS:
        mutation = merge_types("Mutation", MUTATION_AREAS)
        mutation.__strawberry_definition__.description = (
            "Changes administrators make; each is one transaction."
        )
    settings = settings or Settings()
    trusted = TrustedDocuments()
    schema = Schema(
        query=Query,
        mutation=mutation,
        subscription=Subscription,
        config=StrawberryConfig(auto_camel_case=True, name_converter=RememberingNameConverter()),
        extensions=[*limit_extensions(settings, trusted), CodedMaskErrors, OperationLabel],
        scalar_overrides={datetime: datetime_scalar(settings)},
    )
    trusted.register(schema._schema)
    schema.trusted_documents = trusted
    return schema


def schema_sdl() -> str:
    return build_schema().as_str() + "\n"
