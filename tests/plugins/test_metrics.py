"""Prometheus ``/metrics`` over real HTTP on every database: requests by route and
status, latency histograms, the connection pool, and who may read them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from swain.contrib.testing import FreshDatabase, LiveServer, write_config
from swain.core import RUNTIME, ConfigError, create_app, load_config

DDL = "CREATE TABLE notes (id INTEGER PRIMARY KEY, body VARCHAR(50));" \
      "INSERT INTO notes (id, body) VALUES (1, 'a'), (2, 'b')"


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def _value(samples: dict[Any, float], name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def test_requests_are_counted_by_route_and_status(client: httpx.Client) -> None:
    before = _samples(client.get("/metrics").text)
    for _ in range(3):
        assert client.get("/notes").status_code == 200
    assert client.get("/notes/999").status_code == 404
    assert client.get("/tables/notes/1").status_code == 200
    assert client.get("/no/such/route/at/all").status_code == 404
    assert client.request("TRACE", "/notes").status_code == 405
    after = _samples(client.get("/metrics").text)

    def grew(name: str, **labels: str) -> float:
        return (_value(after, name, **labels) or 0) - (_value(before, name, **labels) or 0)

    total = "swain_http_requests_total"
    assert grew(total, method="GET", route="/{table}", status="200") == 3
    assert grew(total, method="GET", route="/{table}/{id}", status="404") == 1
    assert grew(total, method="GET", route="/tables/{table}/{id}", status="200") == 1
    assert grew(total, method="GET", route="(unmatched)", status="404") == 1
    assert grew(total, method="other", route="(unmatched)", status="405") == 1
    histogram = "swain_http_request_duration_seconds"
    assert grew(f"{histogram}_count", method="GET", route="/{table}") == 3
    assert grew(f"{histogram}_bucket", method="GET", route="/{table}", le="+Inf") == 3
    assert grew(f"{histogram}_sum", method="GET", route="/{table}") > 0
    # the previous scrape of /metrics is counted too
    assert grew(total, method="GET", route="/metrics", status="200") == 1


def test_the_pool_is_reported(client: httpx.Client, server: LiveServer) -> None:
    client.get("/notes")
    samples = _samples(client.get("/metrics").text)
    stats = server.app[RUNTIME].dialect.pool_stats()
    assert stats is not None
    # pool_size is 10 by default; the SQLite dialect keeps at most 4 connections
    expected_max = 4 if server.app[RUNTIME].dialect.name == "sqlite" else 10
    assert _value(samples, "swain_db_pool_max") == expected_max
    in_use = _value(samples, "swain_db_pool_connections", state="in_use")
    idle = _value(samples, "swain_db_pool_connections", state="idle")
    assert in_use is not None and idle is not None and 0 <= in_use + idle <= expected_max
    assert idle >= 1  # the request above gave its connection back
    waiting = _value(samples, "swain_db_pool_waiting")
    assert waiting is None or waiting == 0
    r = client.get("/metrics")
    assert r.headers["Content-Type"].startswith("text/plain; version=")


def _server(database: FreshDatabase, tmp_path: Path, **sections: Any) -> LiveServer:
    path = write_config(tmp_path, database.swain_url, **sections)
    return LiveServer(create_app(*load_config(path, environ={})))


def test_only_allowed_networks_read_metrics(database: FreshDatabase, tmp_path: Path) -> None:
    with _server(database, tmp_path, metrics={"allowed_networks": ["10.0.0.0/8"]}) as live:
        r = httpx.get(f"{live.url}/metrics", timeout=30)
        assert r.status_code == 403
        assert r.json()["error"]["code"] == "forbidden"
        assert "swain_http" not in r.text


def test_disabled_metrics_serve_and_count_nothing(database: FreshDatabase,
                                                  tmp_path: Path) -> None:
    live = _server(database, tmp_path, metrics={"enabled": False})
    assert live.app[RUNTIME].request_observers == []
    with live:
        assert httpx.get(f"{live.url}/metrics", timeout=30).status_code == 404


@pytest.mark.parametrize(("metrics", "message"), [
    ({"buckets": [0.5, 0.1]}, r"metrics\.buckets: expected increasing positive bounds"),
    ({"allowed_networks": ["not-a-net"]}, r"metrics\.allowed_networks\[0\]: 'not-a-net'"),
])
def test_bad_settings_refuse_to_start(database: FreshDatabase, tmp_path: Path,
                                      metrics: dict[str, Any], message: str) -> None:
    config, pm = load_config(write_config(tmp_path, database.swain_url, metrics=metrics),
                             environ={})
    with pytest.raises(ConfigError, match=message):
        create_app(config, pm)
