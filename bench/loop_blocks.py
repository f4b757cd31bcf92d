"""How long a bulkGrant of 100,000 outlets holds the worker's event loop (issue 16, the stall target).

    python bench/loop_blocks.py [--outlets 100000] [--database-url postgresql://...]

Partner calls on the worker wait while its event loop runs one piece of the bulk grant without
yielding; over wrk, a stall of a few hundred ms delays only the calls in flight, too few to move a
p99 on a noisy machine (bench/bulk_stall.py). This measures the stalls themselves: the app runs
in-process under uvicorn (bench/admin.py's tree and outlets), a callback on its loop stamps the time
every 5 ms, and a watcher thread records each stretch the stamp went stale for more than
--threshold-ms, with where the loop was (the app's innermost frames). Reported: the longest stall,
how many exceeded 50 and 100 ms, and the bulk grant's time. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.settings import Settings  # noqa: E402
from app.store import migrate  # noqa: E402
from app.web import create_app  # noqa: E402
from bench.admin import BULK, bulk_variables, prepare, wait_ready  # noqa: E402
from bench.databases import DATABASE_URL_HELP, backend, bench_database  # noqa: E402
from tests.livesrv import serve  # noqa: E402

BEAT_S = 0.005
WATCH_S = 0.002


class LoopWatch:
    """Stamps the loop's time from the loop itself; a thread notes how stale the stamp gets."""

    def __init__(self, threshold_s: float) -> None:
        self.threshold_s = threshold_s
        self.stamp = time.monotonic()
        self.loop_thread: int | None = None
        self.stalls: list[tuple[float, float, collections.Counter]] = []  # start, length, where
        self.watching = False

    def beat(self, loop: asyncio.AbstractEventLoop) -> None:
        self.stamp = time.monotonic()
        loop.call_later(BEAT_S, self.beat, loop)

    def start_beating(self) -> None:
        self.loop_thread = threading.get_ident()
        self.beat(asyncio.get_running_loop())

    def watch(self) -> None:
        current: tuple[float, collections.Counter] | None = None
        while True:
            time.sleep(WATCH_S)
            stale = time.monotonic() - self.stamp
            if stale <= self.threshold_s or not self.watching:
                if current is not None:
                    self.stalls.append((current[0], time.monotonic() - current[0], current[1]))
                    current = None
                continue
            if current is None:
                current = (self.stamp, collections.Counter())
            frame = sys._current_frames().get(self.loop_thread)
            if frame is not None:
                app = [
                    f"{f.f_code.co_filename.rsplit('/app/', 1)[-1]}:{f.f_code.co_name}"
                    for f, _ in traceback.walk_stack(frame)
                    if "/app/" in f.f_code.co_filename and "site-packages" not in f.f_code.co_filename
                ]
                current[1][" < ".join(app[:2]) or "(outside the app)"] += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outlets", type=int, default=100_000)
    parser.add_argument("--threshold-ms", type=float, default=20)
    parser.add_argument("--database-url", help=DATABASE_URL_HELP)
    args = parser.parse_args()
    watch = LoopWatch(args.threshold_ms / 1000)
    threading.Thread(target=watch.watch, daemon=True).start()
    with tempfile.TemporaryDirectory() as tmp, bench_database(args.database_url, Path(tmp), "loop") as url:
        migrate.upgrade(url)
        token, _ = asyncio.run(prepare(url, args.outlets))
        app = create_app(Settings(database_url=url))

        async def watched(scope, receive, send) -> None:
            if watch.loop_thread is None:
                watch.start_beating()
            await app(scope, receive, send)

        with serve(watched) as base, httpx.Client(timeout=300) as client:
            wait_ready(client, base)
            time.sleep(0.5)
            watch.watching = True
            variables = bulk_variables("activation", "深人社函〔2026〕101号")
            t0 = time.perf_counter()
            body = client.post(
                f"{base}/graphql",
                json={"query": BULK, "variables": variables},
                headers={"Authorization": f"Bearer {token}"},
            ).json()
            took = time.perf_counter() - t0
            time.sleep(0.2)
            watch.watching = False
        if "errors" in body or body["data"]["bulkGrant"]["count"] != args.outlets:
            raise SystemExit(f"bulkGrant failed: {str(body)[:300]}")
        database = backend(url)
    stalls = sorted(watch.stalls, key=lambda s: -s[1])
    for _, length, where in stalls[:8]:
        print(f"{length * 1000:6.0f} ms  {where.most_common(2)}", file=sys.stderr)
    lengths = [s[1] * 1000 for s in stalls]
    print(
        json.dumps(
            {
                "database": database,
                "outlets": args.outlets,
                "bulk_grant_s": round(took, 2),
                "longest_stall_ms": round(max(lengths, default=0), 1),
                "stalls_over_50_ms": sum(x > 50 for x in lengths),
                "stalls_over_100_ms": sum(x > 100 for x in lengths),
                "stalled_ms_in_all": round(sum(lengths)),
            }
        )
    )


if __name__ == "__main__":
    main()
