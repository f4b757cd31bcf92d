"""Card import benchmark (issue 5): `import_cards` on SQLite, initial load and live batches.

    python bench/card_import.py [--cards 1000000] [--live-cards 100000] [--runs 1]

Generates `cards + live-cards` synthetic cards into one CSV (`app.ops.demo.generate`, valid ID and
bank card numbers) and splits it in two files. Each run copies a fresh SQLite database holding the
migrated schema and the demo tenants, then times:

- the initial load: the `cards` file into the empty card table (one transaction, indexes built at
  the end);
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


async def make_template(url: str, csv_path: Path, cards: int) -> None:
    """A migrated database with the demo tenants, and the generated card file."""
    from app.ops.demo.generate import generate
    from app.ops.tenants.apply import apply_tenant_files
    from app.store import migrate
    from app.store.crypto import FieldCipher
    from app.store.db import make_async_engine, make_session_factory

    migrate.upgrade(url)
    engine = make_async_engine(url)
    try:
        sessions = make_session_factory(engine)
        await apply_tenant_files(sessions, ROOT / "tenants")
        # Key-independent: generate() only writes clear numbers to the CSV.
        cipher = FieldCipher(b"\0" * 32, b"\0" * 32)
        await generate(sessions, cipher, cards=cards, outlets=0, seed=2, csv_path=csv_path)
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
    from app.ops.cards.imports.importer import BATCHES, INITIAL_LOAD
    from app.settings import get_settings, resolve_keys
    from app.store.crypto import FieldCipher

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cards", type=int, default=1_000_000)
    parser.add_argument("--live-cards", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    cipher = FieldCipher(*resolve_keys(get_settings()))
    with tempfile.TemporaryDirectory(prefix="ssc-bench-import-") as tmp:
        workdir = Path(tmp)
        template, everything = workdir / "template.db", workdir / "all.csv"
        initial_file, live_file = workdir / "initial.csv", workdir / "live.csv"
        started = time.perf_counter()
        await make_template(f"sqlite:///{template}", everything, args.cards + args.live_cards)
        split(everything, initial_file, live_file, args.cards)
        everything.unlink()
        generated = args.cards + args.live_cards
        print(f"generated {generated:,} cards in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        initial, live = [], []
        for run in range(args.runs):
            db = workdir / f"run{run}.db"
            shutil.copyfile(template, db)
            url = f"sqlite:///{db}"
            initial.append(await timed_import(url, initial_file, cipher, INITIAL_LOAD))
            live.append(await timed_import(url, live_file, cipher, BATCHES))
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)
    print(
        json.dumps(
            {
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
