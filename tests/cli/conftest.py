"""The environment the `ssc` command of a test runs in: the test's database and key file."""

from __future__ import annotations

import os

import pytest


@pytest.fixture
def env(db_url, tmp_path) -> dict[str, str]:
    return {**os.environ, "SSC_DATABASE_URL": db_url, "SSC_KEY_FILE": str(tmp_path / "keys.env")}
