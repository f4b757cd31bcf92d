"""Finding outlets by a piece of their code or name (app/store/outlet_search.py), on both databases:
through the trigram index for three characters or more, by reading rows for fewer, ignoring ASCII
case, wildcards taken literally, renames followed by the index, and a lagging index never putting a
wrong outlet in."""

from __future__ import annotations

from sqlmodel import select, text

from app.ops.tenants.apply import apply_tenant_files
from app.store.outlet_search import contains
from app.store.tables import Outlet


async def found(sessions, piece: str) -> list[str]:
    async with sessions() as session:
        dialect = (await session.connection()).dialect.name
        return list(
            (await session.exec(select(Outlet.id).where(contains(dialect, piece)).order_by(Outlet.id))).all()
        )


async def test_pieces_of_codes_and_names(sessions, tenants_dir):
    await apply_tenant_files(sessions, tenants_dir)
    assert await found(sessions, "wushan") == ["gz-th-wushan", "gz-th-wushan-huajing"]
    assert await found(sessions, "WUSHAN") == await found(sessions, "wushan")
    assert "gz-th-pharm-dasenlin" in await found(sessions, "大参林")  # three characters: the index
    assert "gz-th-pharm-dasenlin" in await found(sessions, "参林")  # two: the rows themselves
    assert await found(sessions, "%") == [] and await found(sessions, "_") == []
    assert await found(sessions, "no-such-outlet") == []


async def test_a_renamed_outlet_is_found_by_its_new_name(sessions, tenants_dir):
    await apply_tenant_files(sessions, tenants_dir)
    async with sessions() as session, session.begin():
        outlet = await session.get(Outlet, "gz-th-wushan")
        outlet.name = "五山新名字药房"
        session.add(outlet)
    assert await found(sessions, "五山新名字") == ["gz-th-wushan"]
    assert "gz-th-wushan" not in await found(sessions, "五山社区")


async def test_a_lagging_index_never_puts_a_wrong_outlet_in(sessions, tenants_dir):
    await apply_tenant_files(sessions, tenants_dir)
    async with sessions() as session, session.begin():
        if (await session.connection()).dialect.name != "sqlite":
            return  # PostgreSQL's GIN indexes are maintained by the database itself
        # As after a VACUUM renumbered rows: the index says this outlet holds a text it does not.
        rowid = (await session.exec(text("SELECT rowid FROM outlet WHERE id = 'gz-hall-city'"))).one()[0]
        await session.exec(
            text("INSERT INTO outlet_search(rowid, id, name) VALUES (:r, 'x', 'zzz-nowhere')").bindparams(
                r=rowid
            )
        )
    assert await found(sessions, "zzz-nowhere") == []
