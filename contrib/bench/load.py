"""Load generators: ``wrk`` with a Lua script, or a Python fallback.

A :class:`Scenario` names a path template with one ``{}`` and the values put
in it at random per request (a range of integers or a list of strings), so
``wrk`` and the Python generator send the same mix.  Each run returns a
:class:`Measurement`: requests/s, p50 and p99 latency, and the count of
failed or non-2xx responses (which should be zero).

The Python generator runs in its own process (``python -m
swain.contrib.bench.load``) so its work does not share an event loop with
anything else; it is slower than ``wrk`` and saturates sooner, so its figures
are lower bounds for both servers alike.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

#: where a POST scenario's body takes the random choice
BODY_SLOT = "$choice"


@dataclass(frozen=True)
class Scenario:
    """``template.format(choice)`` per request; ``choices`` is ``(low, high)`` or strings.

    With a ``body`` (sent as JSON with ``method``), the choice goes into the body
    at :data:`BODY_SLOT` instead, and ``template`` is the fixed path.
    """

    name: str
    template: str
    choices: tuple[int, int] | tuple[str, ...]
    method: str = "GET"
    body: str | None = None
    #: headers sent with every request (a credential)
    headers: tuple[tuple[str, str], ...] = ()

    def _pick(self, rng: random.Random) -> str:
        if len(self.choices) == 2 and all(isinstance(c, int) for c in self.choices):
            low, high = self.choices
            return str(rng.randint(low, high))  # type: ignore[arg-type]
        return str(rng.choice(self.choices))

    def path(self, rng: random.Random) -> str:
        if self.body is not None:
            return self.template
        return self.template.format(self._pick(rng))

    def request(self, rng: random.Random) -> tuple[str, str | None]:
        """The path and the body (``None`` without one) of the next request."""
        if self.body is None:
            return self.path(rng), None
        return self.template, self.body.replace(BODY_SLOT, self._pick(rng))


@dataclass
class Measurement:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


_JSON_HEADERS = {"Content-Type": "application/json"}


def wrk_path() -> str | None:
    return shutil.which("wrk")


def _lua_table(headers: dict[str, str]) -> str:
    return "{" + ", ".join(f"[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()) + "}"


def _lua(scenario: Scenario) -> str:
    if len(scenario.choices) == 2 and all(isinstance(c, int) for c in scenario.choices):
        pick = f"tostring(math.random({scenario.choices[0]}, {scenario.choices[1]}))"
        table = ""
    else:
        table = "local choices = {" + ", ".join(json.dumps(c) for c in scenario.choices) + "}\n"
        pick = "choices[math.random(1, #choices)]"
    headers = dict(scenario.headers)
    if scenario.body is None:
        prefix, _, suffix = scenario.template.partition("{}")
        build = (f"wrk.format(\"GET\", {json.dumps(prefix)} .. {pick} .. {json.dumps(suffix)}, "
                 f"{_lua_table(headers)})")
    else:
        prefix, _, suffix = scenario.body.partition(BODY_SLOT)
        headers["Content-Type"] = "application/json"
        build = (f"wrk.format({json.dumps(scenario.method)}, {json.dumps(scenario.template)}, "
                 f"{_lua_table(headers)}, "
                 f"{json.dumps(prefix)} .. {pick} .. {json.dumps(suffix)})")
    return f"""{table}
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("seed", counter)
end
function init(args)
  math.randomseed(os.time() * 1000 + seed)
end
function request()
  return {build}
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""


def run_wrk(base_url: str, scenario: Scenario, duration: float, connections: int,
            threads: int) -> Measurement:
    wrk = wrk_path()
    if wrk is None:
        raise RuntimeError("wrk is not installed")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_lua(scenario))
    try:
        result = subprocess.run(
            [wrk, f"-t{threads}", f"-c{max(connections, threads)}", f"-d{max(1, round(duration))}s",
             "--timeout", "10s", "-s", script.name, base_url],
            capture_output=True, text=True, timeout=duration + 60, check=False)
    finally:
        Path(script.name).unlink(missing_ok=True)
    match = re.search(r"^BENCH (\d+) (\d+) (\d+) (\d+) (\d+)$", result.stdout, re.M)
    if result.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed ({result.returncode}): {result.stderr or result.stdout}")
    requests, micros, p50, p99, errors = (int(g) for g in match.groups())
    return Measurement(requests, micros / 1e6, p50 / 1000, p99 / 1000, errors)


def run_python(base_url: str, scenario: Scenario, duration: float,
               connections: int) -> Measurement:
    """The fallback generator, in a separate process."""
    result = subprocess.run(
        [sys.executable, "-m", "swain.contrib.bench.load", "--url", base_url,
         "--scenario", json.dumps(asdict(scenario)), "--duration", str(duration),
         "--connections", str(connections)],
        capture_output=True, text=True, timeout=duration + 60, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"load generator failed: {result.stderr}")
    return Measurement(**json.loads(result.stdout.strip().splitlines()[-1]))


async def _drive(base_url: str, scenario: Scenario, duration: float,
                 connections: int) -> Measurement:
    import aiohttp

    latencies: list[float] = []
    errors = 0
    rng = random.Random()
    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    async with aiohttp.ClientSession(base_url, connector=connector) as session:
        deadline = time.perf_counter() + duration

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    path, body = scenario.request(rng)
                    headers = {**dict(scenario.headers), **(_JSON_HEADERS if body else {})}
                    async with session.request(scenario.method, path, data=body,
                                               headers=headers) as response:
                        await response.read()
                        if response.status >= 300:
                            errors += 1
                except aiohttp.ClientError:
                    errors += 1
                latencies.append(time.perf_counter() - started)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - began
    latencies.sort()

    def percentile(q: float) -> float:
        if not latencies:
            return 0.0
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    return Measurement(len(latencies), elapsed, percentile(0.50), percentile(0.99), errors)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m swain.contrib.bench.load")
    parser.add_argument("--url", required=True)
    parser.add_argument("--scenario", required=True, help="the Scenario as JSON")
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args(argv)
    raw = json.loads(args.scenario)
    scenario = Scenario(raw["name"], raw["template"], tuple(raw["choices"]),
                        raw.get("method", "GET"), raw.get("body"),
                        tuple(tuple(h) for h in raw.get("headers", ())))
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    measured = asyncio.run(_drive(args.url, scenario, args.duration, args.connections))
    print(json.dumps(asdict(measured)))


if __name__ == "__main__":
    main()
