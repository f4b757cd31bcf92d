"""`ssc principals set-password` as an operator runs it: the password from stdin, checked, never
echoed; the person must exist and be active."""

from __future__ import annotations

import subprocess

from tests.cli.commands import ROOT, SSC, TIMEOUT_S, ssc


def set_password(env, name: str, password: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [SSC, "principals", "set-password", name, "--password-stdin"],
        env=env,
        input=password + "\n",
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        cwd=ROOT,
    )


def test_set_password_from_stdin(env):
    assert ssc(env, "migrate").returncode == 0
    assert ssc(env, "tenants", "apply", "tenants/").returncode == 0
    made = ssc(
        env, "tokens", "create", "--tenant", "cn/440000/440100", "--role", "city_admin", "--name", "gz.x"
    )
    assert made.returncode == 0, made.stderr
    done = set_password(env, "gz.x", "Guangzhou-2026-ok")
    assert done.returncode == 0, done.stderr
    assert "enrol their second factor" in done.stderr and "Guangzhou-2026-ok" not in done.stdout + done.stderr
    weak = set_password(env, "gz.x", "short")
    assert weak.returncode == 1 and "BAD_INPUT" in weak.stderr and "short" not in weak.stderr
    unknown = set_password(env, "nobody.here", "Guangzhou-2026-ok")
    assert unknown.returncode == 1 and "NOT_FOUND" in unknown.stderr
