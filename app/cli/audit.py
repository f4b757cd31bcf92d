"""The compliance plane's commands: `ssc audit verify|checkpoint|public-key|export`.

Times given on the command line without a zone are China Standard Time."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Annotated

import orjson
import typer

from app.cli.common import err, fail, migrated_database, out, progress_bar, run_with_db
from app.ops.compliance.labels import CST
from app.settings import get_settings, resolve_signing_key

audit_cli = typer.Typer(help="The audit trail: verify, sign, export.", no_args_is_help=True)


def parse_time(value: str | None, option: str) -> datetime | None:
    """2026-03-03 (midnight), 2026-03-03T14:00 or any ISO 8601 time; without a zone, Beijing time."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        example = "2026-03-03 or 2026-03-03T14:00+08:00"
        raise fail(f"{option}: {value!r} is not a date or time like {example}") from None
    return moment.replace(tzinfo=CST) if moment.tzinfo is None else moment


def _signer():
    from app.ops.compliance.checkpoints import Signer

    try:
        return Signer(resolve_signing_key(get_settings()))
    except RuntimeError as e:
        raise fail(str(e)) from None


def _public_keys(path: Path | None) -> list:
    """The keys whose signatures `verify` trusts: those of the file given, else this server's signing
    key and the keys it replaced (SSC_AUDIT_PREVIOUS_PUBLIC_KEYS)."""
    from app.ops.compliance.checkpoints import CheckpointError, load_public_keys

    if path is None:
        previous = get_settings().audit_previous_public_keys
        return [_signer().public_key, *(_public_keys(previous) if previous is not None else ())]
    try:
        return load_public_keys(path.read_bytes())
    except (OSError, CheckpointError) as e:
        raise fail(f"{path}: {e}") from None


def _anchors(path: Path | None):
    from app.ops.compliance.checkpoints import Checkpoint, CheckpointError

    if path is None:
        return None
    try:
        return Checkpoint.from_document(orjson.loads(path.read_bytes()))
    except (OSError, orjson.JSONDecodeError, CheckpointError) as e:
        raise fail(f"{path}: {e}") from None


DEFAULT_JOBS = min(os.cpu_count() or 1, 8)


@audit_cli.command("verify")
def audit_verify(
    tenant: Annotated[
        str | None, typer.Option(help="Only the chains of this tenant and those below it.")
    ] = None,
    anchors: Annotated[
        Path | None, typer.Option(help="A checkpoint (JSON from `ssc audit checkpoint`) to check against.")
    ] = None,
    checkpoint: Annotated[
        int | None, typer.Option(help="A kept checkpoint to check against, by id (default: the latest).")
    ] = None,
    file: Annotated[
        Path | None, typer.Option(help="Verify an export (`ssc audit export --format jsonl`), no database.")
    ] = None,
    public_key: Annotated[
        Path | None,
        typer.Option(
            help="PEM public keys to trust (`ssc audit public-key` of each, concatenated); default: this "
            "server's and SSC_AUDIT_PREVIOUS_PUBLIC_KEYS."
        ),
    ] = None,
    jobs: Annotated[
        int,
        typer.Option(min=1, max=64, help="Processes reading a large trail at once (default: one per CPU)."),
    ] = DEFAULT_JOBS,
) -> None:
    """Recompute every hash of the audit chains and report the first broken link of each tenant.

    Exit status 1 on any break, 0 with a summary otherwise."""
    from app.ops.compliance.checkpoints import CheckpointError
    from app.ops.compliance.verify import verify_database, verify_file

    keys, anchored = _public_keys(public_key), _anchors(anchors)
    try:
        if file is not None:
            if not file.is_file():
                raise fail(f"{file} is not a file")
            with progress_bar("verifying", None) as advance:
                found = verify_file(file, anchors=anchored, public_keys=keys, progress=advance)
        else:
            url = migrated_database()
            with progress_bar("verifying", None) as advance:
                found = verify_database(
                    url,
                    under=tenant,
                    anchors=anchored,
                    checkpoint_id=checkpoint,
                    public_keys=keys,
                    progress=advance,
                    jobs=jobs,
                )
    except CheckpointError as e:
        raise fail(str(e)) from None
    if file is None:  # the console shows auditors the latest run over the database
        from app.ops.compliance.verifications import record_verification

        run_with_db(lambda sessions: record_verification(sessions, found, tenant))
    for b in found.breaks:
        out.print(f"BROKEN {b.tenant} at event {b.seq}: {b.problem}: {b.message}", highlight=False)
    for problem in found.problems:
        out.print(f"PROBLEM {problem}", highlight=False)
    for note in found.notes:
        err.print(f"note: {note}", highlight=False)
    summary = (
        f"{found.events:,} events in {found.tenants:,} chains verified in {found.seconds:.2f} s "
        f"({found.events_per_second:,.0f} events/s)"
    )
    if found.checkpoint is not None:
        summary += f"; signed heads checked: checkpoint of {found.checkpoint.at} ({found.checkpoint.key})"
    if found.unsigned:
        summary += (
            f"; {sum(found.unsigned.values()):,} events in {len(found.unsigned):,} chains are newer than "
            "the checkpoint and not yet covered by a signature"
        )
    out.print(("FAILED: " if not found.ok else "OK: ") + summary, highlight=False)
    if not found.ok:
        raise typer.Exit(1)


@audit_cli.command("checkpoint")
def audit_checkpoint() -> None:
    """Sign the head of every audit chain now, keep it, and print it as JSON to store elsewhere."""
    from app.ops.compliance.checkpoints import sign_heads

    signer = _signer()
    signed = run_with_db(lambda sessions: sign_heads(sessions, signer, kind="manual"))
    assert signed is not None
    out.print_json(orjson.dumps(signed.document()).decode())
    err.print(f"checkpoint {signed.id}: {len(signed.heads)} chains signed with {signed.key}")


@audit_cli.command("public-key")
def audit_public_key() -> None:
    """Print the public key (PEM) that checks the checkpoints this server signs."""
    from app.ops.compliance.checkpoints import public_pem

    signer = _signer()
    out.print(public_pem(signer.public_key), end="", highlight=False)
    err.print(f"fingerprint {signer.fingerprint}")


@audit_cli.command("export")
def audit_export(
    tenant: Annotated[
        str, typer.Option(help="The chains of this tenant and those below it, e.g. cn/440000.")
    ],
    output: Annotated[Path, typer.Option(help="The file to write (.gz: compressed).")],
    format: Annotated[
        str, typer.Option("--format", help="jsonl (re-verifiable offline), csv or xlsx.")
    ] = "jsonl",
    since: Annotated[str | None, typer.Option("--from", help="From this time (included).")] = None,
    until: Annotated[str | None, typer.Option("--to", help="Until this time (excluded).")] = None,
) -> None:
    """Export the audit trail of a subtree (JSONL: every field and a signed seal, for an inspector to
    check with `ssc audit verify --file`)."""
    from app.domain.errors import DomainError
    from app.domain.regions import parse_tenant_path
    from app.ops.compliance.exports import export_jsonl

    try:
        under = parse_tenant_path(tenant).path
    except DomainError as e:
        raise fail(f"--tenant: {e.message}") from None
    start, end = parse_time(since, "--from"), parse_time(until, "--to")
    if start and end and start >= end:
        raise fail("--from must be before --to")
    if format not in ("jsonl", "csv", "xlsx"):
        raise fail(f"--format {format}: one of jsonl, csv, xlsx")
    url = migrated_database()
    if format != "jsonl":
        from app.ops.compliance.exports import export_table

        with progress_bar("exporting", None) as advance:
            count = export_table(url, output, format, under=under, since=start, until=end, progress=advance)
        out.print(f"{count:,} events written to {output}", highlight=False)
        return
    signer = _signer()
    with progress_bar("exporting", None) as advance:
        done = export_jsonl(url, output, signer, under=under, since=start, until=end, progress=advance)
    written = f"{done.events:,} events of {done.tenants:,} chains written to {done.path}"
    out.print(f"{written}, sealed with {signer.fingerprint}", highlight=False)


@audit_cli.command("archive")
def audit_archive(
    before: Annotated[str, typer.Option(help="Archive the events written before this date or time.")],
    directory: Annotated[
        Path, typer.Option(help="Where to write the archive file (compressed JSONL).")
    ] = Path("var/audit-archive"),
) -> None:
    """Move the events older than the retention period (SSC_AUDIT_RETENTION_DAYS, at least 180 days)
    to a sealed, compressed JSONL file, keeping a signed boundary that `ssc audit verify` goes on from."""
    from app.ops.compliance.archive import ArchiveRefused, archive_before

    moment = parse_time(before, "--before")
    assert moment is not None
    url, signer = migrated_database(), _signer()
    try:
        with progress_bar("archiving", None) as advance:
            done = archive_before(
                url,
                moment,
                signer,
                directory,
                retention_days=get_settings().audit_retention_days,
                progress=advance,
            )
    except ArchiveRefused as e:
        raise fail(str(e)) from None
    if done.path is None:
        out.print("nothing to archive: no chain has events before that time (a chain's last event stays)")
        return
    out.print(
        f"{done.events:,} events of {done.chains:,} chains archived to {done.path} "
        f"(boundary checkpoint {done.checkpoint_id}); verify it with `ssc audit verify --file {done.path}`",
        highlight=False,
    )
