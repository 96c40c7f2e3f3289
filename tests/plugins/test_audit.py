"""Audit events on every database: each kind of write (single rows, bulk rows in
batches and one by one, upserts, updates and deletes by filter) and the reload
action reach the sinks once committed, with who, what table, what keys and
when; nothing that failed or rolled back does.  The shipped sink writes them to
the ``swain.audit`` log."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from swain.contrib.testing import FreshDatabase, LiveServer, write_config
from swain.core import RUNTIME, AuditEvent, create_app, hookimpl, load_config

TOKEN = "audit-example-token"
WHO = {"X-Example-Token": TOKEN}
DDL = {
    "default": """
CREATE TABLE items (id INTEGER PRIMARY KEY, sku VARCHAR(20) NOT NULL UNIQUE, qty INTEGER)
""",
    "mysql": """
CREATE TABLE items (id INTEGER AUTO_INCREMENT PRIMARY KEY, sku VARCHAR(20) NOT NULL UNIQUE,
                    qty INTEGER)
""",
    "postgresql": """
CREATE TABLE items (id SERIAL PRIMARY KEY, sku VARCHAR(20) NOT NULL UNIQUE, qty INTEGER)
""",
}
SECTIONS = {"auth": {"enabled": True}, "audit": {"enabled": True},
            "example": {"token": TOKEN, "user_id": "auditor-7"}}


class Recorder:
    """A second sink, beside the log: every event it is handed."""

    __name__ = "recorder"

    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    @hookimpl
    def swain_audit_sinks(self) -> list[Recorder]:
        return [self]

    async def record(self, event: AuditEvent) -> None:
        self.events.append(event)

    def take(self) -> list[tuple[str, Any]]:
        taken = [(e.action, e.target) for e in self.events]
        self.events.clear()
        return taken


RECORDER = Recorder()


@pytest.fixture(scope="module")
def audited(database: FreshDatabase,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    path = write_config(tmp_path_factory.mktemp("audit"), database.swain_url, **SECTIONS)
    config, pm = load_config(path, environ={}, plugins=[RECORDER])
    with LiveServer(create_app(config, pm)) as live, \
            httpx.Client(base_url=live.url, timeout=30, headers=WHO) as client:
        yield client


@pytest.fixture(autouse=True)
def _clean() -> None:
    RECORDER.events.clear()


def _id(client: httpx.Client, sku: str) -> int:
    r = client.post("/items/filter", json={"expressions": [
        {"field": "sku", "operator": "eq", "value": sku}]})
    return int(r.json()["data"][0]["id"])


def test_single_row_writes(audited: httpx.Client, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="swain.audit")
    before = dt.datetime.now(dt.UTC)
    created = audited.post("/items", json={"sku": "s1", "qty": 1}).json()
    audited.patch(f"/items/{created['id']}", json={"qty": 2})
    audited.delete(f"/items/{created['id']}")
    key = {"id": created["id"]}
    events = list(RECORDER.events)
    assert [(e.action, e.table, e.target) for e in events] == [
        ("create", "items", key), ("update", "items", key), ("delete", "items", key)]
    assert {(e.actor, e.provider) for e in events} == {("auditor-7", "example_token")}
    assert all(before <= e.at <= dt.datetime.now(dt.UTC) for e in events)
    logged = [r for r in caplog.records if r.name == "swain.audit"]
    assert [r.fields["action"] for r in logged] == ["create", "update", "delete"]  # type: ignore[attr-defined]
    assert logged[0].fields["actor"] == "auditor-7"  # type: ignore[attr-defined]
    assert logged[0].fields["target"] == key  # type: ignore[attr-defined]


def test_failed_writes_leave_no_event(audited: httpx.Client) -> None:
    audited.post("/items", json={"sku": "dup", "qty": 1})
    RECORDER.events.clear()
    assert audited.post("/items", json={"sku": "dup"}).status_code == 409
    assert audited.post("/items", json={"sku": "x" * 30}).status_code == 422
    assert audited.delete("/items/987654").status_code == 404
    assert audited.post("/items", json={"sku": "anon"}, headers={"X-Example-Token": ""}) \
        .status_code == 401
    assert RECORDER.take() == []


def test_bulk_rows_one_event_each(audited: httpx.Client) -> None:
    r = audited.post("/items/bulk", json=[{"sku": "b1"}, {"sku": "b2"}, {"sku": "b3"}])
    assert r.status_code == 200, r.text
    ids = [s["id"] for s in r.json()["succeeded"]]
    assert RECORDER.take() == [("create", {"id": i}) for i in ids]
    # a failing row: the batch is replayed row by row, and only good rows count
    r = audited.post("/items/bulk", json=[{"sku": "b4"}, {"sku": "b1"}, {"sku": "b5"}])
    assert r.status_code == 207, r.text
    assert sorted(t["id"] for _, t in RECORDER.take()) == \
        sorted(s["id"] for s in r.json()["succeeded"])
    # all or nothing: nothing was written, so nothing happened
    r = audited.post("/items/bulk?atomic=true", json=[{"sku": "b6"}, {"sku": "b1"}])
    assert r.status_code == 409 and RECORDER.take() == []
    r = audited.put("/items/bulk", json=[{"id": ids[0], "qty": 5}, {"id": ids[1], "qty": 6}])
    assert r.status_code == 200, r.text
    assert RECORDER.take() == [("update", {"id": ids[0]}), ("update", {"id": ids[1]})]


def test_upserts(audited: httpx.Client) -> None:
    audited.post("/items", json={"sku": "u1", "qty": 1})
    RECORDER.events.clear()
    r = audited.post("/items/bulk?on_conflict=update&conflict_columns=sku",
                     json=[{"sku": "u1", "qty": 9}, {"sku": "u2", "qty": 1}])
    assert r.status_code == 200, r.text
    assert RECORDER.take() == [("upsert", {"id": _id(audited, "u1")}),
                               ("upsert", {"id": _id(audited, "u2")})]
    r = audited.post("/items/bulk?on_conflict=ignore&conflict_columns=sku",
                     json=[{"sku": "u1", "qty": 0}])
    assert r.json()["succeeded"][0]["ignored"] is True
    assert RECORDER.take() == []  # nothing was written


def test_writes_by_filter_are_one_event_with_their_filter(audited: httpx.Client) -> None:
    audited.post("/items/bulk", json=[{"sku": "m1", "qty": 3}, {"sku": "m2", "qty": 3}])
    RECORDER.events.clear()
    where = [{"field": "qty", "operator": "eq", "value": 3}]
    assert audited.request("PUT", "/items/filter?dry_run=true",
                           json={"expressions": where, "updateData": {"qty": 4}}).json() == \
        {"updated": 2, "dry_run": True}
    assert audited.request("PUT", "/items/filter?max_affected=1",
                           json={"expressions": where, "updateData": {"qty": 4}}).status_code == 409
    assert RECORDER.events == []
    r = audited.request("PUT", "/items/filter", json={"expressions": where,
                                                      "updateData": {"qty": 4}})
    assert r.json() == {"updated": 2}
    r = audited.request("DELETE", "/items/filter", json={"expressions": [
        {"field": "qty", "operator": "eq", "value": 4}]})
    assert r.json() == {"deleted": 2}
    update, delete = RECORDER.events
    assert (update.action, update.table, update.target, update.actor) == \
        ("mass_update", "items", None, "auditor-7")
    assert update.detail == {"expressions": where, "all": False, "columns": ["qty"],
                             "affected": 2}
    assert (delete.action, delete.detail["affected"], delete.detail["columns"]) == \
        ("mass_delete", 2, [])


def test_reload_is_an_audited_action(database: FreshDatabase, tmp_path: Path,
                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="swain.audit")
    path = write_config(tmp_path, database.swain_url, audit={"enabled": True})
    with LiveServer(create_app(*load_config(path, environ={}))) as live:
        r = httpx.post(f"{live.url}/_swain/reload", timeout=30)
        assert r.status_code == 200, r.text
    [record] = [r for r in caplog.records if r.name == "swain.audit"]
    assert record.fields["action"] == "reload" and record.fields["actor"] is None  # type: ignore[attr-defined]
    assert record.fields["detail"]["remote"] == "127.0.0.1"  # type: ignore[attr-defined]


def test_no_sink_no_events(database: FreshDatabase, tmp_path: Path,
                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="swain.audit")
    path = write_config(tmp_path, database.swain_url)  # [audit] is off by default
    with LiveServer(create_app(*load_config(path, environ={}))) as live:
        assert live.app[RUNTIME].audit_sinks == []
        r = httpx.post(f"{live.url}/items", json={"sku": "quiet"}, timeout=30)
        assert r.status_code == 201
    assert not [r for r in caplog.records if r.name == "swain.audit"]
