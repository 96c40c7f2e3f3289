"""CORS over real HTTP: off by default (no middleware at all), preflights answered
before authentication, allowed origins echoed on every response (errors too),
credentials only when asked for and never with ``*``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from swain.contrib.testing import FreshDatabase, LiveServer, write_config
from swain.contrib.testing.fixtures import only_dialect
from swain.core import ConfigError, create_app, load_config

dialect = only_dialect("sqlite")  # CORS is the same on every database

DDL = "CREATE TABLE notes (id INTEGER PRIMARY KEY, body VARCHAR(50));" \
      "INSERT INTO notes (id, body) VALUES (1, 'hello')"
TOKEN = "cors-example-token"
APP = "https://app.example.com"
SWAIN_CONFIG = {
    "auth": {"enabled": True},
    "example": {"token": TOKEN},  # the example plugin's provider: the tables need it
    "api": {"cors_origins": [APP, "http://localhost:3000/"], "cors_max_age": "2m"},
}
PREFLIGHT = {"Origin": APP, "Access-Control-Request-Method": "PUT",
             "Access-Control-Request-Headers": "authorization, content-type, x-api-key"}


def _server(database: FreshDatabase, tmp_path: Path, **sections: Any) -> LiveServer:
    path = write_config(tmp_path, database.swain_url, **sections)
    return LiveServer(create_app(*load_config(path, environ={})))


def test_preflight_from_an_allowed_origin_is_answered_before_authentication(
        client: httpx.Client) -> None:
    r = client.options("/notes/1", headers=PREFLIGHT)
    assert r.status_code == 204, r.text
    assert r.headers["Access-Control-Allow-Origin"] == APP
    assert set(r.headers["Access-Control-Allow-Methods"].split(", ")) >= {"GET", "PUT", "DELETE"}
    assert r.headers["Access-Control-Allow-Headers"] == PREFLIGHT["Access-Control-Request-Headers"]
    assert r.headers["Access-Control-Max-Age"] == "120"
    assert r.headers["Vary"] == "Origin"
    assert "Access-Control-Allow-Credentials" not in r.headers
    assert r.headers["X-Request-ID"]  # still inside the request context
    # the origin's trailing slash and case do not matter; its port does
    r = client.options("/notes", headers={**PREFLIGHT, "Origin": "http://LOCALHOST:3000"})
    assert r.headers["Access-Control-Allow-Origin"] == "http://LOCALHOST:3000"


def test_preflight_from_another_origin_is_refused(client: httpx.Client) -> None:
    for origin in ("https://evil.example", "https://app.example.com:8443", "null",
                   "http://app.example.com"):
        r = client.options("/notes", headers={**PREFLIGHT, "Origin": origin})
        assert r.status_code == 403, origin
        assert r.json()["error"]["code"] == "forbidden"
        assert "Access-Control-Allow-Origin" not in r.headers


def test_responses_to_an_allowed_origin_carry_the_headers_errors_included(
        client: httpx.Client) -> None:
    r = client.get("/notes/1", headers={"Origin": APP, "X-Example-Token": TOKEN})
    assert r.status_code == 200 and r.json()["body"] == "hello"
    assert r.headers["Access-Control-Allow-Origin"] == APP
    assert "X-Request-ID" in r.headers["Access-Control-Expose-Headers"]
    assert r.headers["Vary"] == "Origin"
    refused = client.get("/notes/1", headers={"Origin": APP})
    assert refused.status_code == 401
    assert refused.headers["Access-Control-Allow-Origin"] == APP  # the browser may read why


def test_other_origins_get_no_cors_headers(client: httpx.Client) -> None:
    r = client.get("/notes/1", headers={"Origin": "https://evil.example",
                                        "X-Example-Token": TOKEN})
    assert r.status_code == 200  # the server answers; the browser withholds it
    assert "Access-Control-Allow-Origin" not in r.headers
    assert r.headers["Vary"] == "Origin"
    r = client.get("/notes/1", headers={"X-Example-Token": TOKEN})
    assert "Access-Control-Allow-Origin" not in r.headers


def test_off_by_default_without_a_middleware(database: FreshDatabase, tmp_path: Path) -> None:
    live = _server(database, tmp_path)
    assert not [m for m in live.app.middlewares if getattr(m, "__name__", "") == "cors"]
    with live:
        r = httpx.options(f"{live.url}/notes", headers=PREFLIGHT, timeout=30)
        assert r.status_code == 405 and "Access-Control-Allow-Origin" not in r.headers
        r = httpx.get(f"{live.url}/notes", headers={"Origin": APP}, timeout=30)
        assert r.status_code == 200
        assert "Access-Control-Allow-Origin" not in r.headers and "Vary" not in r.headers


def test_credentials_when_asked_for(database: FreshDatabase, tmp_path: Path) -> None:
    with _server(database, tmp_path, api={"cors_origins": [APP],
                                          "cors_allow_credentials": True}) as live:
        for r in (httpx.options(f"{live.url}/notes", headers=PREFLIGHT, timeout=30),
                  httpx.get(f"{live.url}/notes", headers={"Origin": APP}, timeout=30)):
            assert r.headers["Access-Control-Allow-Origin"] == APP
            assert r.headers["Access-Control-Allow-Credentials"] == "true"


def test_any_origin_without_credentials(database: FreshDatabase, tmp_path: Path) -> None:
    with _server(database, tmp_path, api={"cors_origins": ["*"]}) as live:
        r = httpx.get(f"{live.url}/notes", headers={"Origin": "https://anyone.example"},
                      timeout=30)
        assert r.headers["Access-Control-Allow-Origin"] == "*" and "Vary" not in r.headers
        r = httpx.options(f"{live.url}/notes",
                          headers={**PREFLIGHT, "Origin": "https://anyone.example"}, timeout=30)
        assert r.status_code == 204 and r.headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize(("api", "message"), [
    ({"cors_origins": ["*"], "cors_allow_credentials": True},
     r'api\.cors_origins: "\*" cannot be combined with api\.cors_allow_credentials'),
    ({"cors_origins": [APP, "app.example.com"]},
     r"api\.cors_origins\[1\]: expected an origin such as https://app\.example\.com"),
    ({"cors_origins": ["https://app.example.com/path"]}, r"api\.cors_origins\[0\]: expected"),
])
def test_bad_settings_refuse_to_start(database: FreshDatabase, tmp_path: Path,
                                      api: dict[str, Any], message: str) -> None:
    config, pm = load_config(write_config(tmp_path, database.swain_url, api=api), environ={})
    with pytest.raises(ConfigError, match=message):
        create_app(config, pm)
