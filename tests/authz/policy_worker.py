"""A second process for the propagation tests: loads the policy, tails the log, reports a flip.

Usage: python tests/authz/policy_worker.py DATABASE_URL SUB SDOM DOM SVC AT
Prints "ready <decision>" once loaded, then "flipped <decision> <unix time>" when the decision for
the request changes, and exits. Bounded: gives up after 30 s.
"""

import asyncio
import sys
import time

from app.authz.policy_state import BusinessPolicy
from app.authz.sync import PolicyTailer
from app.store.db import make_async_engine, make_session_factory

GIVE_UP_S = 30


async def main(url: str, request: list[str]) -> None:
    engine = make_async_engine(url)
    state = BusinessPolicy()
    tailer = PolicyTailer(make_session_factory(engine), load=state.load, apply=state.apply, database_url=url)
    await tailer.start()
    first = state.enforcer.enforce(*request)
    print("ready", first, flush=True)
    deadline = time.monotonic() + GIVE_UP_S
    while time.monotonic() < deadline:
        now = state.enforcer.enforce(*request)
        if now != first:
            print("flipped", now, time.time(), flush=True)
            break
        await asyncio.sleep(0.001)
    await tailer.stop()
    await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2:]))
