"""`ssc demo partner`: everything a partner integrator needs to try the API on a demo database.

For one outlet: an active grant of a card service its kind may hold (made by the outlet's own
department, active at once even where two-person approval applies: the operator on the server is the
bootstrap, as for `ssc tokens create`, and the audit trail says so), a partner key, and one synthetic
test card of the outlet's department whose made-up numbers are printed, so the guide's calls work
from `make serve` in a few commands. Refused in production.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.domain.catalogue import (
    DEFAULT_CEILING,
    FINANCIAL_SERVICES,
    CardService,
    OutletKind,
    parse_card_service,
)
from app.domain.regions import TenantLevel
from app.ops.demo.generate import DemoCard, card_row, next_ordinal, synthetic_cards
from app.ops.errors import OpsError
from app.ops.grants.changes import GrantRequest, grant_service
from app.ops.partner_keys.keys import IssuedKey, create_partner_key
from app.store.crypto import FieldCipher
from app.store.queries import outlet_with_path
from app.store.tables import Card, Outlet, Tenant

ACTOR = "cli:demo-partner"
# What each outlet kind is shown first: a card service a department would extend to it.
FIRST_SERVICE = {
    OutletKind.hrss_hall: CardService.password_reset,
    OutletKind.grassroots_platform: CardService.info_inquiry,
    OutletKind.bank_outlet: CardService.info_inquiry,
    OutletKind.designated_hospital: CardService.info_inquiry,
    OutletKind.designated_pharmacy: CardService.password_change,
    OutletKind.self_service_terminal: CardService.info_inquiry,
    OutletKind.hotline: CardService.temp_loss_report,
}


@dataclass(frozen=True)
class PartnerStart:
    outlet_id: str
    outlet_kind: str
    tenant: str
    service: str
    grant_id: int
    key: IssuedKey
    card: DemoCard


async def _outlet(session: AsyncSession, outlet_id: str) -> tuple[Outlet, str]:
    found = await outlet_with_path(session, outlet_id)
    if found is None or found[0].status != "open":
        raise OpsError(
            "BAD_INPUT", f"no open outlet {outlet_id}; `ssc tenants apply tenants/` makes the demo ones"
        )
    return found


async def _card_issuer(session: AsyncSession, outlet_tenant: str) -> Tenant:
    """The outlet's own department if it issues cards (a prefecture or county), else the first such
    department below it: a card whose tenant the grant covers."""
    tenant = (await session.exec(select(Tenant).where(Tenant.path == outlet_tenant))).one()
    if tenant.level in (TenantLevel.prefecture, TenantLevel.county):
        return tenant
    below = (
        await session.exec(
            select(Tenant)
            .where(Tenant.path.like(f"{outlet_tenant}/%"), Tenant.level.in_(("prefecture", "county")))
            .order_by(Tenant.path)
        )
    ).first()
    if below is None:
        raise OpsError("BAD_INPUT", f"no department issuing cards at or below {outlet_tenant}")
    return below


async def partner_quick_start(
    sessions: async_sessionmaker[AsyncSession],
    cipher: FieldCipher,
    outlet_id: str,
    *,
    service: str | None = None,
    seed: int | None = None,
) -> PartnerStart:
    """One transaction: the grant, the key and the test card, or nothing."""
    async with sessions() as session, session.begin():
        outlet, path = await _outlet(session, outlet_id)
        kind = OutletKind(outlet.kind)
        chosen = parse_card_service(service) if service else FIRST_SERVICE[kind]
        if chosen not in DEFAULT_CEILING[kind] or (
            chosen in FINANCIAL_SERVICES and kind != OutletKind.bank_outlet
        ):
            raise OpsError("BAD_INPUT", f"a {kind.value} may not hold {chosen.value}", field="service")
        grant = await grant_service(
            session,
            GrantRequest(
                tenant=path,
                service=chosen.value,
                valid_from=datetime.now(UTC) - timedelta(minutes=1),
                document_ref="演示〔demo〕1号",
                outlet_id=outlet.id,
                reason="ssc demo partner: a test grant for a partner integration",
            ),
            actor=ACTOR,
        )
        key = await create_partner_key(session, outlet.id, days=30, actor=ACTOR)
        issuer = await _card_issuer(session, path)
        first = await next_ordinal(session, Card.card_number, "D")
        card = next(synthetic_cards(random.Random(seed), [issuer], 1, first))
        session.add(Card(**card_row(card, issuer.id, cipher)))
    return PartnerStart(outlet.id, kind.value, path, chosen.value, grant.id, key, card)
