"""Idempotency keys past the retention: once purged, a retry with the key is a new call and acts again;
keys within the retention still replay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from app.ops.cards.idempotency_purge import purge_idempotency_records
from app.store.tables import IdempotencyRecord
from tests.api.partner_world import FIN, GD, ICBC, card_row_of, events, grant, until_permitted


async def test_a_retry_after_the_purge_acts_again(world):
    card = world.cards["th"]
    await grant(world.sessions, "financial_activation", tenant=GD, kind="bank_outlet")
    await until_permitted(world.partner, ICBC, "financial_activation")

    async def report(key: str) -> dict:
        fields = {"cardSerial": card.card_serial, "idNumber": card.id_number}
        variables = {"i": {**fields, "bankCardNumber": card.bank_card_number, "idempotencyKey": key}}
        body = await world.partner.call(ICBC, FIN, variables)
        assert "errors" not in body, body
        return body["data"]["reportFinancialActivation"]

    # The bank's sync is repeatable (an enabled social function is success), so a second run shows.
    assert (await report("sync-last-week"))["replayed"] is False
    assert (await report("sync-yesterday"))["replayed"] is False
    assert (await report("sync-last-week"))["replayed"] is True
    async with world.sessions() as session, session.begin():
        await session.exec(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.key == "sync-last-week")
            .values(created_at=datetime.now(UTC) - timedelta(days=7))
        )
    version = (await card_row_of(world.sessions, card)).version

    cutoff = datetime.now(UTC) - timedelta(hours=72)
    assert await purge_idempotency_records(world.sessions, older_than=cutoff) == 1

    assert (await report("sync-yesterday"))["replayed"] is True  # within the retention: no change
    assert (await card_row_of(world.sessions, card)).version == version
    assert (await report("sync-last-week"))["replayed"] is False  # forgotten: performed again
    assert (await card_row_of(world.sessions, card)).version == version + 1
    allowed = await events(world.sessions, action="card.financial_activation", decision="allow")
    assert len(allowed) == 3
    assert (await report("sync-last-week"))["replayed"] is True  # and remembered anew
