"""Two ``swain serve`` instances behind nginx on loopback, as one API.

nginx balances round robin (one worker, so requests alternate) and says which
instance answered in ``X-Upstream``.  A login answered by one instance is
refreshed by the other (sessions live in the database); the login rate limit
counts on both through Redis; a role revoked through one instance is refused
by the other within a second (PostgreSQL notifications, or Redis pub/sub on
MySQL and SQLite).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fleet_helpers import DDL, PASSWORD, fleet_sections, seed_roles, signup

from swain.contrib.testing import FreshDatabase, write_config
from swain.contrib.testing.infra import Nginx
from swain.contrib.testing.process import ServeProcess, within

__all__ = ["DDL"]


@dataclass
class Fleet:
    config_path: Path
    instances: list[ServeProcess]
    nginx: Nginx
    lb: httpx.Client
    direct: list[httpx.Client]

    def upstream(self, response: httpx.Response) -> str:
        return response.headers["X-Upstream"]

    def port_of(self, response: httpx.Response) -> int:
        return int(self.upstream(response).rsplit(":", 1)[1])


@pytest.fixture(scope="module")
def fleet(database: FreshDatabase, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    path = write_config(tmp_path_factory.mktemp("fleet"), database.swain_url,
                        **fleet_sections(database.dialect))
    seed_roles(path)
    instances: list[ServeProcess] = []
    clients: list[httpx.Client] = []
    try:
        for _ in range(2):
            instances.append(ServeProcess(path).start())
        with Nginx([f"127.0.0.1:{i.port}" for i in instances]) as nginx, \
                httpx.Client(base_url=nginx.url, timeout=30) as lb:
            clients = [httpx.Client(base_url=i.url, timeout=30) for i in instances]
            yield Fleet(path, instances, nginx, lb, clients)
    finally:
        for client in clients:
            client.close()
        for instance in instances:
            instance.stop()
            instance.close()


def test_requests_alternate_between_the_instances(fleet: Fleet) -> None:
    ports = [fleet.port_of(fleet.lb.get("/health")) for _ in range(4)]
    assert set(ports) == {i.port for i in fleet.instances}
    assert ports[0] != ports[1] and ports[0] == ports[2]
    assert all(fleet.lb.get("/ready").status_code == 200 for _ in range(2))


def test_a_login_on_one_instance_is_refreshed_on_the_other(fleet: Fleet) -> None:
    r = fleet.lb.post("/auth/signup", json={"email": "roaming@example.com", "password": PASSWORD})
    assert r.status_code == 201, r.text
    login = fleet.lb.post("/auth/login", json={"email": "roaming@example.com",
                                               "password": PASSWORD})
    assert login.status_code == 200, login.text
    refreshed = fleet.lb.post("/auth/refresh",
                              json={"refresh_token": login.json()["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    assert fleet.upstream(login) != fleet.upstream(refreshed)
    # the new access token works on both instances; the old refresh token on neither
    token = {"Authorization": f"Bearer {refreshed.json()['access_token']}"}
    for client in fleet.direct:
        assert client.get("/auth/me", headers=token).json()["user"]["email"] == \
            "roaming@example.com"
    for client in fleet.direct:
        replay = client.post("/auth/refresh", json={"refresh_token": login.json()["refresh_token"]})
        assert replay.status_code == 401
    # and directly: logged in on the first, refreshed on the second
    first = fleet.direct[0].post("/auth/login", json={"email": "roaming@example.com",
                                                      "password": PASSWORD}).json()
    second = fleet.direct[1].post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200, second.text


def test_the_login_rate_limit_holds_across_both_instances(fleet: Fleet) -> None:
    r = fleet.lb.post("/auth/signup", json={"email": "limited@example.com", "password": PASSWORD})
    assert r.status_code == 201, r.text
    answered_by = set()
    for _ in range(3):  # login_per_account = 3/1m
        wrong = fleet.lb.post("/auth/login", json={"email": "limited@example.com",
                                                   "password": "not the password"})
        assert wrong.status_code == 401, wrong.text
        answered_by.add(fleet.upstream(wrong))
    assert len(answered_by) == 2  # the attempts were spread over both instances
    for client in (fleet.lb, *fleet.direct):
        refused = client.post("/auth/login", json={"email": "limited@example.com",
                                                   "password": PASSWORD})
        assert refused.status_code == 429, refused.text
        assert int(refused.headers["Retry-After"]) >= 1
        assert refused.json()["error"]["code"] == "rate_limited"
    # another account is not affected
    other = fleet.lb.post("/auth/login", json={"email": "roaming@example.com",
                                               "password": PASSWORD})
    assert other.status_code in (200, 401)


def test_a_role_revoked_on_one_instance_denies_on_the_other_within_a_second(
        fleet: Fleet, database: FreshDatabase) -> None:
    admin = signup(fleet.lb, fleet.config_path, "fleet-admin@example.com", "admin")
    reader = signup(fleet.lb, fleet.config_path, "fleet-reader@example.com", "reader")
    for client in fleet.direct:  # each instance now caches the reader's permissions (1h)
        assert client.get("/orders", headers=reader).status_code == 200
    user_id = database.query("SELECT id FROM users WHERE email = 'fleet-reader@example.com'")[0][0]
    first, second = fleet.direct
    rows = first.get(f"/user_roles?user_id={user_id}", headers=admin).json()["data"]
    assert first.delete(f"/user_roles/{rows[0]['id']}", headers=admin).status_code == 200
    within(lambda: second.get("/orders", headers=reader).status_code == 403)
    through_lb = [fleet.lb.get("/orders", headers=reader) for _ in range(2)]
    assert [r.status_code for r in through_lb] == [403, 403]
    assert {fleet.upstream(r) for r in through_lb} == {
        f"127.0.0.1:{i.port}" for i in fleet.instances}
    body = through_lb[0].json()["error"]
    assert body["code"] == "forbidden" and "orders.read" in body["message"]
