"""The permission matrix is whatCan for every outlet at once: cell for cell, now and at a past time."""

from __future__ import annotations

from datetime import UTC, datetime

from app.ops.compliance.history import what_can_do
from app.ops.compliance.reports import matrix_table, permission_matrix
from tests.ops.compliance.test_history import GZ, TH, perform


async def cells_by_outlet(matrix) -> dict[str, dict[str, tuple[str, ...]]]:
    return {row.outlet_id: {s: c.grant_ids for s, c in row.cells.items()} for row in matrix.rows}


async def test_the_matrix_is_what_each_outlet_could_do(sessions, auditor):
    for move in [
        ("grant", GZ, "password_change", "kind:grassroots_platform", -1, None),
        ("grant", TH, "password_reset", "gz-th-wushan", -1, 60),
        ("grant", TH, "info_inquiry", "gz-th-ccb-tiyu", -1, None),
    ]:
        await perform(sessions, move)
    then = datetime.now(UTC)
    await perform(sessions, ("revoked", 1))
    await perform(sessions, ("ceiling", GZ, "designated_pharmacy", {"password_change"}))
    for at in (then, None):
        matrix = await permission_matrix(sessions, auditor, GZ, at)
        found = await cells_by_outlet(matrix)
        assert found and all(row.tenant.startswith(GZ) for row in matrix.rows)
        for outlet_id, cells in found.items():
            holdings = await what_can_do(sessions, auditor, outlet_id, matrix.at)
            expected = {
                h.service: tuple(v.statutory or str(v.grant.grant.id) for v in h.via)
                for h in holdings.services
            }
            assert cells == expected, (outlet_id, at)
    # Wushan's password_reset held then, not now.
    past = await cells_by_outlet(await permission_matrix(sessions, auditor, GZ, then))
    present = await cells_by_outlet(await permission_matrix(sessions, auditor, GZ))
    assert "password_reset" in past["gz-th-wushan"] and "password_reset" not in present["gz-th-wushan"]
    headers, rows = matrix_table(await permission_matrix(sessions, auditor, GZ))
    assert len(headers) == 4 + 12 and len(list(rows)) == len(present)
