"""`ssc key-rotation …`: the operator's side of rotating the keys that protect personal data and sign
the audit trail, without downtime (docs/operations.md, Key rotation)."""

from __future__ import annotations

import typer

from app.cli.common import err, fail, out, progress_bar, run_with_db

rotation_cli = typer.Typer(help="Rotate the data, lookup and audit signing keys.", no_args_is_help=True)


@rotation_cli.command("new-key")
def new_key() -> None:
    """Print a fresh random key (urlsafe base64 of 32 bytes) for SSC_DATA_KEY, SSC_LOOKUP_KEY or
    SSC_AUDIT_SIGNING_KEY. Printed once, to stdout only: put it in the secret store, not a shell history."""
    import base64
    import secrets

    out.print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(), highlight=False)


@rotation_cli.command("rewrap")
def rewrap_command() -> None:
    """Move every card's ID and bank card numbers and every TOTP secret to the current data and lookup
    keys. Run it once every worker has the new keys as current and the old ones as previous; it
    serves on meanwhile, can be stopped and run again, and exits 1 if a value no key opens remains."""
    from sqlmodel import func, select

    from app.ops.keys.rewrap import rewrap
    from app.settings import get_settings
    from app.store.crypto import field_cipher
    from app.store.tables import Card

    try:
        cipher = field_cipher(get_settings())
    except RuntimeError as e:
        raise fail(str(e)) from None

    async def count(sessions) -> int:
        async with sessions() as session:
            return (await session.exec(select(func.count()).select_from(Card))).one()

    total = run_with_db(count)
    with progress_bar("rewrapping", total) as advance:
        summary = run_with_db(lambda sessions: rewrap(sessions, cipher, progress=advance))
    out.print(
        f"{summary.cards} cards read, {summary.cards_rewrapped} rewrapped; "
        f"{summary.secrets} TOTP secrets read, {summary.secrets_rewrapped} rewrapped",
        highlight=False,
    )
    if summary.unreadable_count:
        for what in summary.unreadable:
            err.print(f"no configured key opens {what}", highlight=False)
        raise fail(
            f"{summary.unreadable_count} values open under none of the keys: keep the previous keys "
            "configured and find the key that sealed them"
        )
