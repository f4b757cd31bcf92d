"""Card import benchmark (issue 5): `import_cards`, initial load and live batches.

    python bench/card_import.py [--cards 1000000] [--live-cards 100000] [--runs 1]
                                [--database-url postgresql://postgres@127.0.0.1:5432/test]

Generates `cards + live-cards` synthetic cards into one CSV (`app.ops.demo.generate`, valid ID and
bank card numbers) and splits it in two files. Each run starts from a fresh database holding the
migrated schema and the demo tenants (on SQLite a copy of a template file; on PostgreSQL a database
of its own on the server), then times:

- the initial load: the `cards` file into the empty card table (SQLite: one transaction, indexes
  built at the end; PostgreSQL: batches, as always there);
- as the baseline, in the same run, the live path: the `live-cards` file into that now full table
  (one transaction per batch, live indexes, each batch checked against the stored cards).

Rates are imported rows per second of `import_cards`, the median over the runs. The last line is
one JSON object. Imports stay at module level light: worker processes start from this file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


async def prepare_database(url: str) -> None:
    """Migrate the empty database at `url` and apply the demo tenants."""
    from app.ops.tenants.apply import apply_tenant_files
    from app.store import migrate
    from app.store.db import make_async_engine, make_session_factory

    migrate.upgrade(url)
    engine = make_async_engine(url)
    try:
        await apply_tenant_files(make_session_factory(engine), ROOT / "tenants")
    finally:
        await engine.dispose()


async def generate_file(url: str, csv_path: Path, cards: int) -> None:
    """The card file, generated against the tenants of `url` (which it leaves settled)."""
    from app.ops.demo.generate import generate
    from app.store.crypto import FieldCipher
    from app.store.db import make_async_engine, make_session_factory
    from bench.databases import backend

    engine = make_async_engine(url)
    try:
        # Key-independent: generate() only writes clear numbers to the CSV.
        cipher = FieldCipher(b"\0" * 32, b"\0" * 32)
        await generate(
            make_session_factory(engine), cipher, cards=cards, outlets=0, seed=2, csv_path=csv_path
        )
        if backend(url) == "sqlite":
            async with engine.connect() as connection:
                await connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        await engine.dispose()


def split(source: Path, first: Path, rest: Path, rows: int) -> None:
    with source.open("rb") as fh, first.open("wb") as a, rest.open("wb") as b:
        header = fh.readline()
        a.write(header)
        b.write(header)
        for n, line in enumerate(fh):
            (a if n < rows else b).write(line)


async def timed_import(url: str, path: Path, cipher, expected_mode: str) -> float:
    from app.ops.cards.imports.importer import import_cards
    from app.store.db import make_async_engine, make_session_factory

    engine = make_async_engine(url)
    try:
        started = time.perf_counter()
        summary = await import_cards(make_session_factory(engine), cipher, path)
        elapsed = time.perf_counter() - started
    finally:
        await engine.dispose()
    if summary.mode != expected_mode or summary.problem_count or summary.imported != summary.rows:
        raise SystemExit(f"unexpected import result: {summary}")
    print(f"  {summary.mode}: {summary.imported:,} rows in {elapsed:.2f} s", file=sys.stderr)
    return summary.imported / elapsed


async def main() -> None:
    from sqlalchemy.engine import make_url

    from app.ops.cards.imports.importer import BATCHES, INITIAL_LOAD
    from app.settings import get_settings, resolve_keys
    from app.store.crypto import FieldCipher
    from bench.databases import DATABASE_URL_HELP, bench_database

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cards", type=int, default=1_000_000)
    parser.add_argument("--live-cards", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--database-url", help=DATABASE_URL_HELP)
    args = parser.parse_args()
    cipher = FieldCipher(*resolve_keys(get_settings()))
    on_postgresql = args.database_url is not None
    with tempfile.TemporaryDirectory(prefix="ssc-bench-import-") as tmp:
        workdir = Path(tmp)
        everything = workdir / "all.csv"
        initial_file, live_file = workdir / "initial.csv", workdir / "live.csv"
        started = time.perf_counter()
        # The file (and on SQLite the template every run copies) from a database of the tenants.
        with bench_database(None, workdir, "template") as template_url:
            await prepare_database(template_url)
            await generate_file(template_url, everything, args.cards + args.live_cards)
        split(everything, initial_file, live_file, args.cards)
        everything.unlink()
        generated = args.cards + args.live_cards
        print(f"generated {generated:,} cards in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        # PostgreSQL imports in batches whatever the table holds (importer.py).
        first_mode = BATCHES if on_postgresql else INITIAL_LOAD
        initial, live = [], []
        for run in range(args.runs):
            with bench_database(args.database_url, workdir, f"run{run}") as url:
                if on_postgresql:
                    await prepare_database(url)
                else:
                    shutil.copyfile(workdir / "template.db", make_url(url).database)
                initial.append(await timed_import(url, initial_file, cipher, first_mode))
                live.append(await timed_import(url, live_file, cipher, BATCHES))
            if not on_postgresql:
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{make_url(url).database}{suffix}").unlink(missing_ok=True)
    print(
        json.dumps(
            {
                "database": "postgresql" if on_postgresql else "sqlite",
                "first_import_mode": first_mode,
                "initial_load_rows_per_s": round(statistics.median(initial)),
                "live_rows_per_s": round(statistics.median(live)),
                "rows": args.cards,
                "live_rows": args.live_cards,
                "runs": args.runs,
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
