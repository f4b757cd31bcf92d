"""Partner key helpers shared by test_partner_keys.py, test_partner_key_rate_cap.py and
test_outlet_partner_keys.py: the outlet and tenant the keys are made for, the key mutations and the
stored keys with the audit trail."""

from __future__ import annotations

from sqlmodel import select

from app.store.tables import AuditEvent, PartnerKey

TH_OUTLET = "gz-th-pharm-dasenlin"  # a Tianhe (Guangzhou) pharmacy in tenants/guangdong.toml
TH = "cn/440000/440100/440106"

CREATE = (
    "mutation($i: CreatePartnerKeyInput!) { createPartnerKey(input: $i) { key prefix expiresAt"
    " partnerKey { id outletId tenantPath prefix rateLimit status revokedAt } } }"
)
REVOKE = (
    "mutation($i: RevokePartnerKeyInput!) { revokePartnerKey(input: $i) { partnerKey { id prefix status"
    " revokedAt } } }"
)


async def key_state(sessions) -> dict:
    async with sessions() as session:
        keys = (await session.exec(select(PartnerKey).order_by(PartnerKey.id))).all()
        events = (await session.exec(select(AuditEvent).order_by(AuditEvent.id))).all()
    return {
        "keys": [(k.id, k.outlet_id, k.revoked_at) for k in keys],
        "events": [(e.tenant, e.action, e.decision, e.actor, e.detail) for e in events],
    }
