"""The database builds each event's hashed content in SQL for `verify`'s speed: for whatever the
platform writes, it must be byte for byte what Python hashes, or every event would take the slow
path. (Where they differ, on hand-made rows, Python decides: tests/ops/compliance/test_verify.py.)"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.store.audit import append_events
from app.store.audit_read import chain_rows, content_of
from app.store.db import make_sync_engine

# Text the platform accepts in display fields and reasons, and what JSON must escape.
TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from('"\\/〔〕《》、'),
    max_size=40,
)
DETAIL = st.dictionaries(
    st.text(min_size=1, max_size=8),
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | TEXT | st.lists(TEXT, max_size=3),
    max_size=5,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    events=st.lists(
        st.tuples(TEXT, st.none() | st.sampled_from(["token:1", "key:22"]), DETAIL, st.none() | TEXT),
        min_size=1,
        max_size=8,
    )
)
async def test_the_sql_content_is_the_python_content(db_url, sessions, events):
    async with sessions() as session, session.begin():
        await append_events(
            session,
            [
                (
                    "cn/440000",
                    {
                        "actor": f"person:{actor}"[:96],
                        "credential": credential,
                        "action": "grant.create",
                        "target_type": "grant",
                        "target_id": "1",
                        "detail": detail,
                        "reason": (reason or None) and reason[:32],
                        "request_id": None,
                    },
                )
                for actor, credential, detail, reason in events
            ],
        )
    engine = make_sync_engine(db_url)
    try:
        with engine.connect() as connection:
            rows = [row for batch in chain_rows(connection, "cn/440000") for row in batch]
            assert rows, "the chain was read"
            for _tenant, _seq, _prev, _hash, content, ref in rows:
                assert bytes(content) == content_of(connection, ref)
    finally:
        engine.dispose()
