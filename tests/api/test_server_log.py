"""The server log of a run full of refusals holds none of the personal numbers or PINs it was sent.

The security review (issue 11, item 6) found every refused partner call logged by the GraphQL
library with a traceback and an excerpt of the query text: an ID number, a bank card number or a
PIN written inline (not as a variable) landed in the log in clear.
"""

from __future__ import annotations

import logging

from graphql import GraphQLError

from app.graphql.error_log import log_errors
from tests.api.partner_world import HALL, PHARMACY


def inline_calls(card, pins: tuple[str, str]) -> list[str]:
    """Refused partner calls with the numbers written into the query text itself."""
    old, new = pins
    number, id_number = card.card_number, card.id_number
    return [
        # No grant: NOT_FOUND or FORBIDDEN.
        f'{{ cardStatus(cardNumber: "{number}", idNumber: "{id_number}", purpose: "password_change")'
        " { status } }",
        f'mutation {{ changePassword(input: {{cardNumber: "{card.card_number}", idNumber: "{card.id_number}",'
        f' oldPin: "{old}", newPin: "{new}", idempotencyKey: "log-0001"}}) {{ card {{ pinState }} }} }}',
        f'mutation {{ reportFinancialActivation(input: {{cardSerial: "{card.card_serial}",'
        f' idNumber: "{card.id_number}", bankCardNumber: "{card.bank_card_number}",'
        ' idempotencyKey: "log-0002"}) { card { socialFunction } } }',
        # A value of the wrong type: refused while the variables are coerced.
        f'mutation {{ resetPassword(input: {{cardNumber: "{number}", idNumber: "{id_number}",'
        f' identityVerified: "{new}", newPin: {new}, idempotencyKey: "log-0003"}})'
        " { card { pinState } } }",
        # A syntax error whose excerpt would quote the line.
        f'{{ cardStatus(cardNumber: "{number}", idNumber: {id_number} purpose: "x") {{ status }} }}',
    ]


async def test_a_run_of_refusals_logs_codes_and_request_ids_never_the_numbers(world, caplog):
    caplog.set_level(logging.DEBUG)
    pins = ("975310", "864209")
    secrets = list(pins)
    for card in world.cards.values():
        secrets += [card.id_number, card.bank_card_number]
        for outlet in (PHARMACY, HALL):
            for query in inline_calls(card, pins):
                body = await world.partner.call(outlet, query)
                assert body.get("errors"), body
    text = caplog.text
    for secret in secrets:
        assert secret not in text, secret
    assert "refused" in text and "NOT_FOUND" in text and "BAD_INPUT" in text
    assert "request " in text
    assert "Traceback" not in text  # refusals are not faults of the server


def test_an_unexpected_errors_traceback_is_kept_but_scrubbed(caplog):
    caplog.set_level(logging.DEBUG)
    try:
        raise RuntimeError(
            "lookup failed for 44010619900101123X with PIN 975310 and card 6222021234567890123"
        )
    except RuntimeError as err:
        failure = err
    log_errors([GraphQLError("boom", path=["cardStatus"], original_error=failure)], None)
    assert "Traceback" in caplog.text and "RuntimeError" in caplog.text and "cardStatus" in caplog.text
    for secret in ("44010619900101123X", "975310", "6222021234567890123"):
        assert secret not in caplog.text
