"""`ssc cards import` as a real process, with worker processes: the summary names the mode."""

import os
import subprocess
import sys
from pathlib import Path

from app.ops.demo.generate import generate
from app.ops.tenants.apply import apply_tenant_files
from app.store.crypto import FieldCipher

ROOT = Path(__file__).resolve().parents[2]
SSC = str(Path(sys.executable).parent / "ssc")


def _import(db_url: str, tmp_path: Path, path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "SSC_DATABASE_URL": db_url, "SSC_KEY_FILE": str(tmp_path / "keys.env")}
    command = [SSC, "cards", "import", str(path), "--batch", "100", "--workers", "2"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, cwd=ROOT)


async def test_cards_import_command_reports_rows_and_mode(sessions, tenants_dir, tmp_path, db_url):
    await apply_tenant_files(sessions, tenants_dir)
    path = tmp_path / "cards.csv"
    await generate(sessions, FieldCipher(b"k" * 32, b"l" * 32), cards=150, outlets=0, seed=3, csv_path=path)

    first = _import(db_url, tmp_path, path)
    assert first.returncode == 0, first.stderr
    assert "150 rows: 150 cards imported in 2 batches, 0 batches refused (0 problems)" in first.stdout
    mode = "initial load" if db_url.startswith("sqlite") else "batches"
    assert f"mode: {mode} (" in first.stdout

    again = _import(db_url, tmp_path, path)
    assert again.returncode == 1
    assert "0 cards imported in 0 batches, 2 batches refused (300 problems)" in again.stdout
    assert "mode: batches (one transaction per batch" in again.stdout
    assert f"{path}: line 2: card_serial: already in the database" in again.stderr
