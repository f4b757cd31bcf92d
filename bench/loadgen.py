"""The load generator of the HTTP benchmarks: `wrk` (Debian package `wrk`), one thread per run,
bounded in time, driven by a small Lua script written here.

Each request's body is `template` formatted with one item (a tuple of strings, picked at random) and
`$N` replaced by the request's number in the run, so writes can carry unique ids. A response is an
error when its status is not 2xx or its body holds GraphQL `errors`.

A figure is only the server's when the generator kept up: `Run.generator_bound` is true when wrk's
one thread was busy most of the run (its CPU time, from wait4, near its wall time), and a benchmark
then refuses to print a ratio from it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# wrk's thread busy this share of the run: it, not the server, set the pace.
GENERATOR_BOUND_SHARE = 0.9

WRK_SCRIPT = """
local items = {%(items)s}
local n = 0
gql_errors = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
%(headers)s
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end
request = function()
  n = n + 1
  local it = items[math.random(#items)]
  local body = string.format(%(template)s, unpack(it))
  body = string.gsub(body, "%%$N", tostring(n))
  return wrk.format(nil, "%(path)s", nil, body)
end
response = function(status, headers, body)
  if status < 200 or status > 299 or string.find(body, '"errors"', 1, true) then
    gql_errors = gql_errors + 1
  end
end
done = function(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + t:get("gql_errors") end
  local e = summary.errors
  io.write(string.format(
    "WRK {\\"requests\\": %%d, \\"seconds\\": %%f, \\"p50_ms\\": %%f, \\"p99_ms\\": %%f, "
    .. "\\"p999_ms\\": %%f, \\"max_ms\\": %%f, \\"errors\\": %%d}\\n",
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency:percentile(99.9) / 1000, latency.max / 1000, bad + e.connect + e.read + e.write + e.timeout))
end
"""


@dataclass(frozen=True)
class Scenario:
    name: str
    path: str
    template: str  # JSON text with one %s per item value, and $N for the request's number
    items: Sequence[tuple[str, ...]]
    headers: dict[str, str]
    connections: int


@dataclass(frozen=True)
class Run:
    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    errors: int
    requests: int
    generator_cpu_share: float  # wrk's CPU seconds over the run's seconds

    @property
    def generator_bound(self) -> bool:
        return self.generator_cpu_share >= GENERATOR_BOUND_SHARE


def median_run(runs: Sequence[Run], by: str = "rps") -> Run:
    """The round with the median `by` (req/s by default); its other figures come with it."""
    return sorted(runs, key=lambda r: getattr(r, by))[len(runs) // 2]


def lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def require_wrk() -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install -y wrk)")


def start(base: str, workdir: Path, scenario: Scenario, seconds: float) -> subprocess.Popen:
    script = workdir / f"{scenario.name}.lua"
    script.write_text(
        WRK_SCRIPT
        % {
            "items": ", ".join("{" + ", ".join(map(lua_string, item)) + "}" for item in scenario.items),
            "headers": "\n".join(
                f"wrk.headers[{lua_string(k)}] = {lua_string(v)}" for k, v in scenario.headers.items()
            ),
            "path": scenario.path,
            "template": lua_string(scenario.template),
        }
    )
    command = ["wrk", "-t1", f"-c{scenario.connections}", f"-d{int(seconds)}s", "--timeout", "30s"]
    return subprocess.Popen(
        [*command, "-s", str(script), base], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(name: str, process: subprocess.Popen) -> Run:
    """Wait for a started run; its figures, with wrk's own CPU time from the kernel."""
    out = process.stdout.read()
    err = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0 or "WRK " not in out:
        raise SystemExit(f"wrk failed for {name}: {err or out}")
    found = json.loads(out.split("WRK ", 1)[1].splitlines()[0])
    return Run(
        name,
        found["requests"] / found["seconds"],
        found["p50_ms"],
        found["p99_ms"],
        found["p999_ms"],
        found["max_ms"],
        found["errors"],
        found["requests"],
        (usage.ru_utime + usage.ru_stime) / found["seconds"],
    )


def run(base: str, workdir: Path, scenario: Scenario, seconds: float) -> Run:
    return finish(scenario.name, start(base, workdir, scenario, seconds))


def run_together(base: str, workdir: Path, scenarios: Sequence[Scenario], seconds: float) -> list[Run]:
    """Several scenarios at once, each its own wrk: a mixed load with figures per operation."""
    started = [(s.name, start(base, workdir, s, seconds)) for s in scenarios]
    return [finish(name, process) for name, process in started]
