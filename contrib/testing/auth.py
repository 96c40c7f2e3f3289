"""Helpers for tests of the auth plugins: fast password hashing and the
sign-up / login round trips most such tests start with."""

from __future__ import annotations

from typing import Any

import httpx

#: ``[auth]`` settings that make Argon2 hashing cheap enough for a test suite
FAST_ARGON2: dict[str, int] = {"argon2_time_cost": 1, "argon2_memory_kib": 1024,
                               "argon2_parallelism": 1}


def signup(client: httpx.Client, email: str, password: str, **extra: object) -> httpx.Response:
    """``POST /auth/signup`` with ``email``, ``password`` and any ``extra`` body fields;
    the response is returned unchecked, so tests can assert refusals too."""
    return client.post("/auth/signup", json={"email": email, "password": password, **extra})


def login(client: httpx.Client, email: str, password: str) -> dict[str, Any]:
    """``POST /auth/login``, asserting it succeeds; returns the token pair."""
    r = client.post("/auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def bearer(token: str) -> dict[str, str]:
    """The ``Authorization`` header for a bearer ``token``."""
    return {"Authorization": f"Bearer {token}"}
