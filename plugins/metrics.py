"""Prometheus metrics at ``GET /metrics`` (text exposition format, prometheus-client).

* ``swain_http_requests_total{method, route, status}``: every request, errors,
  refused credentials and unknown paths included (``route`` is the route's
  template, ``/{table}/{id}``, or ``(unmatched)``);
* ``swain_http_request_duration_seconds{method, route}``: a latency histogram;
* ``swain_db_pool_connections{state="in_use"|"idle"}``, ``swain_db_pool_max``
  and, where the pool tells, ``swain_db_pool_waiting``: read from the dialect
  at scrape time, so nothing is done for them per request.

Requests are counted by a request observer (no middleware of its own); label
sets are resolved once and kept, so a request costs a dictionary lookup, an
increment and a histogram observation.  Each application has its own
registry.  ``/metrics`` needs no credentials but answers only clients in
``[metrics] allowed_networks`` (loopback by default): route names and traffic
are no one else's business.
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Iterable, Iterator
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from swain.core import (
    RUNTIME,
    Config,
    ConfigError,
    Dialect,
    Forbidden,
    Runtime,
    ServiceKey,
    Setting,
    hookimpl,
    public,
)

#: methods counted under their own name; anything else a client sends is "other"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: label sets kept at most (routes are templates, so real traffic stays far below)
_LIMIT = 10_000
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class PoolCollector(Collector):
    """The dialect's pool, read at scrape time."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect

    def collect(self) -> Iterator[GaugeMetricFamily]:
        stats = self.dialect.pool_stats()
        if stats is None:
            return
        connections = GaugeMetricFamily("swain_db_pool_connections",
                                        "Database connections by state.", labels=["state"])
        connections.add_metric(["in_use"], stats.in_use)
        connections.add_metric(["idle"], stats.idle)
        yield connections
        yield GaugeMetricFamily("swain_db_pool_max", "The most connections the pool opens.",
                                value=stats.max)
        if stats.waiting is not None:
            yield GaugeMetricFamily("swain_db_pool_waiting",
                                    "Requests waiting for a database connection.",
                                    value=stats.waiting)


class Metrics:
    """The application's registry and request observer (the ``METRICS`` service)."""

    def __init__(self, runtime: Runtime) -> None:
        section = runtime.config.metrics
        buckets = tuple(section.buckets)
        if not buckets or any(b <= a for a, b in itertools.pairwise(buckets)) \
                or buckets[0] <= 0:
            raise ConfigError(f"metrics.buckets: expected increasing positive bounds in seconds, "
                              f"got {list(buckets)}")
        self.registry = CollectorRegistry()
        self.requests = Counter("swain_http_requests", "HTTP requests by route and status.",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("swain_http_request_duration_seconds",
                                 "HTTP request latency by route.", ["method", "route"],
                                 registry=self.registry, buckets=buckets)
        self.registry.register(PoolCollector(runtime.dialect))
        self.networks: list[Network] = []
        for i, entry in enumerate(section.allowed_networks):
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise ConfigError(f"metrics.allowed_networks[{i}]: {entry!r} is not an address "
                                  "or network") from None
        self._counts: dict[tuple[str, str, int], Any] = {}
        self._timers: dict[tuple[str, str], Any] = {}

    def observe(self, request: web.Request, route: str, status: int, seconds: float) -> None:
        method = request.method if request.method in METHODS else "other"
        count = self._counts.get((method, route, status))
        if count is None:
            if len(self._counts) >= _LIMIT:
                self._counts.clear()
            count = self._counts[(method, route, status)] = self.requests.labels(
                method, route or "(unmatched)", str(status))
        count.inc()
        timer = self._timers.get((method, route))
        if timer is None:
            if len(self._timers) >= _LIMIT:
                self._timers.clear()
            timer = self._timers[(method, route)] = self.latency.labels(
                method, route or "(unmatched)")
        timer.observe(seconds)

    def allows(self, remote: str | None) -> bool:
        try:
            address = ipaddress.ip_address(remote or "")
        except ValueError:
            return False
        return any(address in network for network in self.networks)


METRICS: ServiceKey[Metrics] = ServiceKey("swain.metrics", provider="metrics")


def _metrics(runtime: Runtime) -> Metrics:
    return runtime.services.ensure(METRICS, lambda: Metrics(runtime))


@public  # Prometheus scrapes without credentials; allowed_networks decides
async def metrics(request: web.Request) -> web.Response:
    found = request.app[RUNTIME].services.get(METRICS)
    if not found.allows(request.remote):
        raise Forbidden("metrics are served only to metrics.allowed_networks")
    return web.Response(body=generate_latest(found.registry),
                        headers={"Content-Type": CONTENT_TYPE_LATEST})


@hookimpl
def swain_config_sections() -> dict[str, dict[str, Setting]]:
    return {"metrics": {
        "enabled": Setting("bool", True, doc="count requests and serve /metrics"),
        "allowed_networks": Setting("list", ["127.0.0.1/32", "::1/128"],
                                    doc="client addresses or networks that may read /metrics"),
        "buckets": Setting("list", [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                                    10.0], item="float",
                           doc="latency histogram bucket bounds, in seconds"),
    }}


@hookimpl
def swain_request_observers(config: Config, runtime: Runtime) -> Iterable[Metrics]:
    return [_metrics(runtime)] if config.metrics.enabled else []


@hookimpl
def swain_routes(config: Config, runtime: Runtime) -> Iterable[web.RouteDef]:
    if not config.metrics.enabled:
        return []
    _metrics(runtime)
    return [web.get("/metrics", metrics)]
