"""Running the `ssc` command as a real process, as an operator would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SSC = str(Path(sys.executable).parent / "ssc")
TIMEOUT_S = 60


def ssc(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([SSC, *args], env=env, capture_output=True, text=True, timeout=TIMEOUT_S, cwd=ROOT)
