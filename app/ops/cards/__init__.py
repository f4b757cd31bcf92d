"""Cards: lookup, card services, PINs, idempotency and the card audit."""
