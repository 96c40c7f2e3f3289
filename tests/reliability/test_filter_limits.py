"""Large filters cost bounded memory and time, and are refused before SQL when too big.

An ``in`` list is one bound value whatever its length (an array on PostgreSQL,
a JSON document on SQLite, expanded when the statement runs on MySQL), so list
lengths make no new shape in the compiled-SQL cache, and that cache is bounded
in bytes.  A payload binding more values than ``[query] max_parameters`` (or
than the database takes in one statement) is a 422 naming the limit, before
any SQL is built.  ``/health`` keeps answering while heavy filters run, and a
server's memory stays flat over many distinct heavy shapes.  Aliases, which
become SQL identifiers, refuse control characters (a NUL would cut the
statement) and long names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from swain.contrib.testing import FreshDatabase, LiveServer, selected_dialects, write_config
from swain.contrib.testing.process import ServeProcess, latencies_during, rss_mb
from swain.core import create_app, load_config
from swain.core.keys import RUNTIME

_ROWS = ", ".join(
    f"({i}, {i * 10}, '{i}.25', 'label-{i}', '{('sad', 'ok', 'happy')[i % 3]}', "
    f"'2024-01-{i:02d}', '2024-01-{i:02d} 10:00:00', '2024-01-{i:02d} 10:00:00+00:00', "
    f"'10:{i:02d}:00', '00000000-0000-0000-0000-{i:012d}')"
    for i in range(1, 11))
_INSERT = ("INSERT INTO kinds (id, n, amount, label, mood, day, at, zoned, clock, ref) "
           f"VALUES {_ROWS}, (11, 110, '11.25', 'abcdefghij', 'ok', '2024-02-01', "
           "'2024-02-01 10:00:00', '2024-02-01 10:00:00+00:00', '11:00:00', "
           "'00000000-0000-0000-0000-000000000011')")
DDL = {
    "sqlite": """
CREATE TABLE kinds (id INTEGER PRIMARY KEY, n INTEGER, amount DECIMAL(10,2), label VARCHAR(10),
  mood VARCHAR(10) CHECK (mood IN ('sad', 'ok', 'happy')), day DATE, at TIMESTAMP,
  zoned TIMESTAMP WITH TIME ZONE, clock TIME, ref UUID);
""" + _INSERT,
    "postgresql": """
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE kinds (id INTEGER PRIMARY KEY, n BIGINT, amount NUMERIC(10,2), label VARCHAR(10),
  mood mood, day DATE, at TIMESTAMP, zoned TIMESTAMPTZ, clock TIME, ref UUID);
""" + _INSERT,
    "mysql": """
CREATE TABLE kinds (id INTEGER PRIMARY KEY, n BIGINT, amount DECIMAL(10,2), label VARCHAR(10),
  mood ENUM('sad', 'ok', 'happy'), day DATE, at DATETIME, zoned TIMESTAMP NULL, clock TIME,
  ref UUID);
""" + _INSERT.replace("+00:00'", "'"),
}
SWAIN_CONFIG = {"query": {"cache_size": "256kb"}}

#: column -> (values for ``in``, the ids they match)
IN_CASES: dict[str, tuple[list[Any], set[int]]] = {
    "n": ([10, 30, 999], {1, 3}),
    "amount": (["2.25", 4.25, "7.250"], {2, 4, 7}),
    # case and length count: no longer value matches a truncated prefix
    "label": (["label-1", "LABEL-2", "abcdefghijk", "abcdefghij"], {1, 11}),
    "mood": (["sad", "happy"], {i for i in range(1, 11) if i % 3 != 1}),
    "day": (["2024-01-02", "2024-01-05"], {2, 5}),
    "at": (["2024-01-03T10:00:00", "2024-01-04T10:00:00"], {3, 4}),
    "zoned": (["2024-01-06T12:00:00+02:00", "2024-01-07T10:00:00Z"], {6, 7}),
    "clock": (["10:08:00", "10:09:00"], {8, 9}),
    "ref": (["00000000-0000-0000-0000-000000000010"], {10}),
}


def _ids(response: httpx.Response) -> set[int]:
    assert response.status_code == 200, response.text
    return {row["id"] for row in response.json()["data"]}


def _cond(field: str, operator: str, value: Any) -> dict[str, Any]:
    return {"field": field, "operator": operator, "value": value}


def _filter(client: httpx.Client, *expressions: dict[str, Any], **extra: Any) -> httpx.Response:
    return client.post("/kinds/filter?page_size=100", json={"expressions": list(expressions),
                                                           **extra})


@pytest.mark.parametrize("column", sorted(IN_CASES))
def test_in_and_nin_match_exactly_on_every_kind(client: httpx.Client, column: str) -> None:
    values, expected = IN_CASES[column]
    assert _ids(_filter(client, _cond(column, "in", values))) == expected
    assert _ids(_filter(client, _cond(column, "nin", values))) == set(range(1, 12)) - expected
    counted = client.post("/kinds/count", json={"expressions": [_cond(column, "in", values)]})
    assert counted.json() == {"count": len(expected)}


def test_list_lengths_make_no_new_shapes(client: httpx.Client, server: Any) -> None:
    catalog = server.app[RUNTIME].catalog
    _filter(client, _cond("n", "in", [10]))
    held = catalog.cache_bytes
    for length in range(2, 60):
        assert _ids(_filter(client, _cond("n", "in", list(range(10, 10 * length + 1, 10))))) \
            == {i for i in range(1, 12) if i <= length}
    assert catalog.cache_bytes == held


def test_distinct_heavy_shapes_stay_within_the_cache_budget(client: httpx.Client,
                                                            server: Any) -> None:
    catalog = server.app[RUNTIME].catalog
    for shape in range(120):
        lists = [_cond("n", "in" if (shape >> bit) & 1 else "nin",
                       list(range(bit * 1000, bit * 1000 + 1000))) for bit in range(7)]
        extra = [_cond("id", "gte", 0)] * (shape % 5)
        r = _filter(client, {"operator": "OR", "expressions": lists}, *extra)
        assert r.status_code == 200, r.text
    assert catalog.cache_bytes <= 2 * 256 * 1024


def test_too_many_values_are_a_422_naming_the_limit_before_any_sql(client: httpx.Client,
                                                                   server: Any) -> None:
    catalog = server.app[RUNTIME].catalog
    held = catalog.cache_bytes
    lists = [_cond("id", "in", list(range(k * 1000, k * 1000 + 1000))) for k in range(21)]
    r = _filter(client, {"operator": "OR", "expressions": lists})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert "at most 20000" in error["message"] and "query.max_parameters" in error["message"]
    assert error["details"][0]["path"] == "expressions[0].expressions[20].value"
    assert catalog.cache_bytes == held  # refused while parsing: nothing was compiled


@pytest.mark.parametrize("backend", [d for d in selected_dialects() if d == "postgresql"])
def test_the_database_limit_caps_a_larger_setting(backend: str, tmp_path: Path) -> None:
    # PostgreSQL's protocol limit (65,535 parameters) is the one to reach
    with FreshDatabase(backend) as database:
        database.run_script(DDL[backend])
        path = write_config(tmp_path, database.swain_url, query={"max_parameters": 100_000})
        _capped(path)


def _capped(path: Path) -> None:
    config, pm = load_config(path, "development", environ={})
    with LiveServer(create_app(config, pm)) as live, \
            httpx.Client(base_url=live.url, timeout=60) as http:
        lists = [_cond("id", "in", list(range(k * 1000, k * 1000 + 1000))) for k in range(61)]
        r = _filter(http, {"operator": "OR", "expressions": lists})
        assert r.status_code == 422, r.text
        assert "65535" in r.json()["error"]["message"]
        lists.pop()  # 60,000 values: one array each, far from the protocol's limit
        assert _ids(_filter(http, {"operator": "OR", "expressions": lists})) == set(range(1, 12))


@pytest.mark.parametrize("alias", ["a\x00b", "tab\there", "x" * 64, "\x7f"])
def test_aliases_refuse_control_characters_and_long_names(client: httpx.Client,
                                                          alias: str) -> None:
    r = client.post("/kinds/filter", json={"aggregations": {
        "functions": [{"type": "COUNT", "alias": alias}], "group_by": ["mood"]}})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"][0]["path"] == "aggregations.functions[0].alias"


def test_unicode_aliases_up_to_the_limit_work(client: httpx.Client) -> None:
    alias = "Σ" * 63
    r = client.post("/kinds/filter", json={"aggregations": {
        "functions": [{"type": "COUNT", "alias": alias}], "group_by": ["mood"],
        "sort": [{"field": "mood"}]}})
    assert r.status_code == 200, r.text
    assert sum(row[alias] for row in r.json()["data"]) == 11


def test_health_answers_while_two_heavy_filters_run(client: httpx.Client, server: Any) -> None:
    # 20 lists of 1,000 values: the most a filter may bind by default
    lists = [_cond("n", "in", list(range(k * 1000, k * 1000 + 1000))) for k in range(20)]
    payload = {"expressions": [{"operator": "OR", "expressions": lists}]}

    def heavy() -> None:
        with httpx.Client(base_url=server.url, timeout=120) as own:
            for _ in range(4):
                assert own.post("/kinds/filter", json=payload).status_code == 200

    latencies = latencies_during(server.url + "/health", [heavy, heavy], interval=0.02)
    assert latencies
    # the target is 500 ms (the faults script prints the figures); this bound
    # leaves room for a machine shared with other test runs
    assert max(latencies) < 1.5, f"/health took {max(latencies):.2f}s"


def test_memory_stays_flat_over_many_heavy_shapes(database: FreshDatabase,
                                                  tmp_path: Path) -> None:
    path = write_config(tmp_path, database.swain_url)
    with ServeProcess(path) as served, httpx.Client(base_url=served.url, timeout=120) as http:

        def shape(number: int) -> dict[str, Any]:
            lists = [_cond("n", "in" if (number >> bit) & 1 else "nin",
                           list(range(number * 20_000 + bit * 1000,
                                      number * 20_000 + bit * 1000 + 1000)))
                     for bit in range(19)]
            return {"expressions": [{"operator": "OR", "expressions": lists},
                                    *[_cond("id", "gte", k) for k in range(number % 7)]]}

        for number in range(10):  # warm up: code paths, pools, allocator arenas
            assert http.post("/kinds/filter", json=shape(number)).status_code == 200
        before = rss_mb(served.pid)
        for number in range(10, 130):
            assert http.post("/kinds/filter", json=shape(number)).status_code == 200
        grown = rss_mb(served.pid) - before
    assert grown < 48, f"the server grew by {grown:.0f} MB over 120 shapes"
