"""Fixtures of the ops tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.ops.tenants.apply import apply_tenant_files
from tests.ops.cards.imports.card_files import generated_card_file


@pytest.fixture
async def card_file(sessions, tenants_dir, tmp_path) -> Path:
    """The demo tenants, and a file of 250 generated cards for them."""
    await apply_tenant_files(sessions, tenants_dir)
    return await generated_card_file(sessions, tmp_path / "cards.csv", 250, seed=11)
