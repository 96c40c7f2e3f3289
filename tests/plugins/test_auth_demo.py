"""`swain demo` serves its shop with auth on: the printed demo
credentials log in, the catalogue is public, everything else needs a token."""

from __future__ import annotations

from pathlib import Path

import httpx

from swain.contrib.demo import DEMO_EMAIL, DEMO_PASSWORD, prepare
from swain.contrib.testing import LiveServer
from swain.core import create_app, load_config


def test_demo_credentials_log_in_and_auth_is_on(tmp_path: Path) -> None:
    config, pm = load_config(prepare(tmp_path), "development", environ={})
    assert config.auth.enabled and len(config.auth.jwt_secret) >= 32
    with LiveServer(create_app(config, pm)) as live, \
            httpx.Client(base_url=live.url, timeout=30) as http:
        assert http.get("/products").status_code == 200
        assert http.get("/users").status_code == 401
        login = http.post("/auth/login", json={"email": DEMO_EMAIL, "password": DEMO_PASSWORD})
        assert login.status_code == 200, login.text
        bearer = {"Authorization": f"Bearer {login.json()['access_token']}"}
        users = http.get("/users", headers=bearer).json()["data"]
        assert users and all("password_hash" not in row for row in users)
        assert http.get("/sessions", headers=bearer).status_code == 404
        me = http.get("/auth/me", headers=bearer).json()
        assert me["user"]["email"] == DEMO_EMAIL
        wrong = http.post("/auth/login", json={"email": DEMO_EMAIL, "password": "not-it-at-all"})
        assert wrong.status_code == 401
    # Every demo folder gets its own secret.
    other, _ = load_config(prepare(tmp_path / "again"), "development", environ={})
    assert other.auth.jwt_secret != config.auth.jwt_secret
