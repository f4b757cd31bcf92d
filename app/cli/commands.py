"""The `ssc` commands of the platform's everyday operation: migrate, serve, tenants, tokens, demo,
cards, keys, idempotency."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import err, fail, out, progress_bar, run_with_db
from app.settings import get_settings
from app.store import migrate as migrations
from app.store.crypto import field_cipher

cli = typer.Typer(
    help="ssc: social security card service-extension platform.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
tenants_cli = typer.Typer(help="Declarative tenant trees (tenants/*.toml).", no_args_is_help=True)
tokens_cli = typer.Typer(help="Personal bearer tokens for administrators.", no_args_is_help=True)
demo_cli = typer.Typer(help="Synthetic demo data.", no_args_is_help=True)
cards_cli = typer.Typer(help="Social security cards.", no_args_is_help=True)
keys_cli = typer.Typer(help="Partner API keys (one outlet each).", no_args_is_help=True)
idempotency_cli = typer.Typer(help="Idempotency records of partner mutations.", no_args_is_help=True)
cli.add_typer(tenants_cli, name="tenants")
cli.add_typer(tokens_cli, name="tokens")
cli.add_typer(demo_cli, name="demo")
cli.add_typer(cards_cli, name="cards")
cli.add_typer(keys_cli, name="keys")
cli.add_typer(idempotency_cli, name="idempotency")


@cli.command()
def migrate() -> None:
    """Upgrade the database (empty or older) to the newest schema."""
    settings = get_settings()
    before = migrations.current_revision(settings.database_url)
    migrations.upgrade(settings.database_url)
    after = migrations.current_revision(settings.database_url)
    out.print(f"database at revision {after}" + ("" if before == after else f" (was {before or 'empty'})"))


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind; default from SSC_HOST.")] = None,
    port: Annotated[int | None, typer.Option(help="Port; default from SSC_PORT.")] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, max=64, help="Worker processes; default from SSC_WORKERS (1).")
    ] = None,
) -> None:
    """Serve GraphQL at http://HOST:PORT/graphql (uvicorn), with the console, /metrics and JSON logs."""
    import os
    import shutil

    settings = get_settings()
    # The workers' metrics meet in one folder (prometheus-client's multiprocess mode, app/metrics.py).
    # The variable must be set before prometheus_client is first imported, here too (one worker runs in
    # this process), and the folder start empty: a former run's counters would add up.
    shutil.rmtree(settings.metrics_dir, ignore_errors=True)
    settings.metrics_dir.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(settings.metrics_dir)
    import uvicorn

    from app.cli.http_protocol import NoDelayHttpToolsProtocol
    from app.cli.workers import serve_workers
    from app.logs import log_config

    options = {
        "factory": True,
        "http": NoDelayHttpToolsProtocol,
        "host": host or settings.host,
        "port": port or settings.port,
        "workers": workers or settings.workers,
        "log_config": log_config(settings.log_level),
        "timeout_graceful_shutdown": settings.shutdown_grace_seconds,
    }
    if options["workers"] == 1:
        uvicorn.run("app.web:create_app", **options)
    else:  # a listening socket per worker (app/cli/workers.py)
        serve_workers(uvicorn.Config("app.web:create_app", **options))


@cli.command("partner-documents")
def partner_documents(
    text: Annotated[bool, typer.Option("--text", help="Print each document's text too.")] = False,
) -> None:
    """The trusted partner documents: name and sha256Hash (what a partner sends instead of the text)."""
    from app.graphql.schema import build_schema

    for document in build_schema(get_settings()).trusted_documents:
        out.print(f"{document.name}\t{document.sha256}", highlight=False)
        if text:
            out.print(document.text, highlight=False, markup=False)


@tenants_cli.command("apply")
def tenants_apply(
    directory: Annotated[Path, typer.Argument(help="Folder of *.toml tenant files (or one file).")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan, change nothing.")] = False,
    prune: Annotated[
        bool, typer.Option("--prune", help="Remove file-managed objects that left the files.")
    ] = False,
) -> None:
    """Make the database match the tenant files: print the plan, then apply it in one transaction."""
    from app.ops.tenants.apply import PruneRefused, apply_tenant_files
    from app.ops.tenants.files import TenantFileError

    if not directory.exists():
        raise fail(f"{directory} does not exist")
    try:
        plan = run_with_db(
            lambda sessions: apply_tenant_files(sessions, directory, dry_run=dry_run, prune=prune)
        )
    except TenantFileError as e:
        for problem in e.problems:
            err.print(f"[red]error:[/red] {problem}", highlight=False)
        raise fail("the tenant files were refused; nothing was written") from None
    except PruneRefused as e:
        raise fail(f"{e}; nothing was written") from None
    for change in plan.changes:
        if change.action != "unchanged":
            out.print(change.describe(), highlight=False)
    counts = ", ".join(f"{plan.count(a)} {a}" for a in ("create", "update", "unchanged", "missing", "prune"))
    verb = "would apply" if dry_run else "applied"
    out.print(f"{verb}: {counts}" if plan.has_changes else f"nothing to change ({counts})")
    if plan.count("missing"):
        out.print("missing objects are managed by the files but no longer in them; --prune removes them")


@tokens_cli.command("create")
def tokens_create(
    tenant: Annotated[str, typer.Option(help="Tenant path, e.g. cn/440000/440100.")],
    role: Annotated[
        str, typer.Option(help="province_admin, city_admin, county_admin, operator, approver, auditor.")
    ],
    name: Annotated[
        str | None, typer.Option(help="Login name of the new person (generated if omitted).")
    ] = None,
    days: Annotated[int, typer.Option(help="Days until the token expires (1-366).")] = 90,
) -> None:
    """Create a person with a role in a tenant and print their bearer token (shown only this once)."""
    from app.ops.principals.credentials import create_principal_with_token

    issued = run_with_db(
        lambda sessions: create_principal_with_token(
            sessions, tenant_path=tenant, role=role, name=name, days=days
        )
    )
    err.print(
        f"created {issued.principal_name} ({role} at {tenant}); token expires {issued.expires_at:%Y-%m-%d}."
        " Store it now: it is not kept and cannot be shown again."
    )
    print(issued.token)


@demo_cli.command("generate")
def demo_generate(
    cards: Annotated[int, typer.Option(min=0, help="How many cards.")] = 1000,
    outlets: Annotated[
        int, typer.Option(min=0, help="How many outlets (always written to the database).")
    ] = 0,
    csv: Annotated[
        Path | None, typer.Option(help="Write the cards to this CSV (for `cards import`).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed, for reproducible data.")] = None,
) -> None:
    """Generate synthetic outlets and cards with valid ID and bank card numbers."""
    from app.ops.demo.generate import generate

    cipher = field_cipher(get_settings())
    with progress_bar("generating", cards + outlets) as advance:
        summary = run_with_db(
            lambda sessions: generate(
                sessions,
                cipher,
                cards=cards,
                outlets=outlets,
                seed=seed,
                csv_path=csv,
                progress=advance,
            )
        )
    where = f" to {csv}" if csv else ""
    out.print(f"generated {summary['outlets']} outlets and {cards} cards{where}")


@demo_cli.command("partner")
def demo_partner(
    outlet: Annotated[
        str, typer.Option(help="The demo outlet the partner system acts as, e.g. gz-th-pharm-dasenlin.")
    ],
    service: Annotated[
        str | None,
        typer.Option(help="The card service to grant (default: one the outlet's kind is typically given)."),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed for the test card.")] = None,
) -> None:
    """Get an outlet ready for a partner integration test: a grant, a key and a synthetic test card.

    Not in production. The test card's numbers are made up (they pass the ID and Luhn checks)."""
    from app.ops.demo.partner import partner_quick_start
    from app.ops.errors import OpsError

    settings = get_settings()
    if settings.env == "production":
        raise fail("ssc demo partner makes test grants and cards: not in production")
    cipher = field_cipher(settings)
    try:
        start = run_with_db(
            lambda sessions: partner_quick_start(sessions, cipher, outlet, service=service, seed=seed)
        )
    except OpsError as e:
        raise fail(f"{e.message} [{e.code}]") from None
    card = start.card
    url = f"http://{settings.host}:{settings.port}/graphql"
    err.print(
        f"outlet {start.outlet_id} ({start.outlet_kind}, {start.tenant}) may now perform {start.service}"
        f" (grant {start.grant_id}); its key expires {start.key.expires_at:%Y-%m-%d}. Store the key now:"
        " it is not kept and cannot be shown again."
    )
    print(f"SSC_URL={url}")
    print(f"SSC_KEY={start.key.key}")
    print(f"CARD_TENANT={card.issuing_tenant}")
    print(f"CARD_NUMBER={card.card_number}")
    print(f"CARD_SERIAL={card.card_serial}")
    print(f"ID_NUMBER={card.id_number}")
    print(f"BANK_CARD_NUMBER={card.bank_card_number}")
    print(f"SERVICE={start.service}")


@cards_cli.command("import")
def cards_import(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV with issuing_tenant, card_number, card_serial, id_number, "
            "service_bank and optionally holder_name, bank_card_number."
        ),
    ],
    batch: Annotated[int, typer.Option(min=100, max=200_000, help="Rows per all-or-nothing batch.")] = 20_000,
    workers: Annotated[
        int | None,
        typer.Option(
            min=0, help="Processes preparing rows (0: this one). Default: one per CPU, none for small files."
        ),
    ] = None,
) -> None:
    """Import cards: validated batches, each written whole or not at all, problems listed by line.

    Into an empty card table on SQLite the whole file is one transaction with the indexes built at
    the end (initial load); otherwise each batch is its own transaction."""
    import time

    from app.ops.cards.imports.importer import MODES, CardFileError, import_cards

    if not file.is_file():
        raise fail(f"{file} is not a file")
    cipher = field_cipher(get_settings())
    with file.open("rb") as fh:  # for the progress bar: lines, counted in C
        total = sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b"")) - 1
    started = time.perf_counter()
    try:
        with progress_bar("importing", max(total, 0)) as advance:
            summary = run_with_db(
                lambda sessions: import_cards(
                    sessions,
                    cipher,
                    file,
                    batch_size=batch,
                    progress=advance,
                    workers=workers,
                )
            )
    except CardFileError as e:
        raise fail(str(e)) from None
    elapsed = time.perf_counter() - started
    for problem in summary.problems:
        err.print(f"{file}: {problem}", highlight=False)
    if summary.problem_count > len(summary.problems):
        err.print(f"... and {summary.problem_count - len(summary.problems)} more problems")
    out.print(
        f"{summary.rows} rows: {summary.imported} cards imported in {summary.batches_written} batches, "
        f"{summary.batches_refused} batches refused ({summary.problem_count} problems), "
        f"{summary.rows / elapsed:,.0f} rows/s"
    )
    out.print(f"mode: {summary.mode} ({MODES[summary.mode]})")
    if summary.batches_refused:
        raise typer.Exit(1)


@keys_cli.command("create")
def keys_create(
    outlet: Annotated[str, typer.Option(help="The outlet the partner system acts as.")],
    days: Annotated[int, typer.Option(help="Days until the key expires (1-731).")] = 365,
    rate_limit: Annotated[str | None, typer.Option(help="e.g. '50/second'; default from settings.")] = None,
) -> None:
    """Create a partner API key for an outlet and print it (shown only this once)."""
    from app.ops.errors import OpsError
    from app.ops.partner_keys.keys import create_partner_key

    async def work(sessions):
        async with sessions() as session, session.begin():
            return await create_partner_key(
                session, outlet, days=days, actor="cli:keys-create", rate_limit=rate_limit
            )

    try:
        issued = run_with_db(work)
    except OpsError as e:
        raise fail(f"{e.message} [{e.code}]") from None
    err.print(
        f"key {issued.prefix}… for outlet {issued.outlet_id}, expires {issued.expires_at:%Y-%m-%d}."
        " Store it now: it is not kept and cannot be shown again."
    )
    print(issued.key)


@keys_cli.command("revoke")
def keys_revoke(
    reason: Annotated[str, typer.Option(help="Why (kept in the audit trail).")],
    key_id: Annotated[int | None, typer.Option("--id", help="The key's number.")] = None,
    prefix: Annotated[str | None, typer.Option(help="The key's first 15 characters (ssc_pk_…).")] = None,
) -> None:
    """Revoke a partner API key: every worker refuses it within the key cache time (1 s by default)."""
    from app.ops.errors import OpsError
    from app.ops.partner_keys.keys import revoke_key

    async def work(sessions):
        async with sessions() as session, session.begin():
            return await revoke_key(
                session, key_id=key_id, prefix=prefix, reason=reason, actor="cli:keys-revoke"
            )

    try:
        view = run_with_db(work)
    except OpsError as e:
        raise fail(f"{e.message} [{e.code}]") from None
    err.print(f"key {view.row.prefix}… (id {view.row.id}) of outlet {view.row.outlet_id} revoked.")


@idempotency_cli.command("purge")
def idempotency_purge(
    older_than_hours: Annotated[
        int | None,
        typer.Option(min=1, max=8760, help="Age in hours; default: SSC_IDEMPOTENCY_RETENTION_HOURS."),
    ] = None,
) -> None:
    """Delete partner mutations' idempotency records older than the retention (for a daily cron job).

    A retry with a purged key is treated as a new call."""
    from datetime import UTC, datetime, timedelta

    from app.ops.cards.idempotency_purge import purge_idempotency_records

    hours = get_settings().idempotency_retention_hours if older_than_hours is None else older_than_hours
    cutoff = datetime.now(UTC) - timedelta(hours=hours)
    deleted = run_with_db(lambda sessions: purge_idempotency_records(sessions, older_than=cutoff))
    out.print(f"purged {deleted} idempotency records older than {cutoff:%Y-%m-%dT%H:%M:%SZ} ({hours} h)")
