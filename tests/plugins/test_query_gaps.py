"""Query-engine edge cases on every database: mass operations through a
self-referencing relationship, ``group_by`` inside a relationship, and the
``filter`` query parameter in the OpenAPI document."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

DDL = {
    "default": """
CREATE TABLE employees (id INTEGER PRIMARY KEY, name VARCHAR(20) NOT NULL,
                        dept VARCHAR(10) NOT NULL,
                        manager_id INTEGER REFERENCES employees(id));
""",
    "mysql": """
CREATE TABLE employees (id INTEGER PRIMARY KEY, name VARCHAR(20) NOT NULL,
                        dept VARCHAR(10) NOT NULL, manager_id INTEGER,
                        FOREIGN KEY (manager_id) REFERENCES employees(id));
""",
}

#: (id, name, dept, manager_id): 1 heads "ops" and "dev", 2 and 5 lead teams
EMPLOYEES = [(1, "ceo", "exec", None), (2, "ann", "ops", 1), (3, "bob", "ops", 2),
             (4, "cid", "ops", 2), (5, "dee", "dev", 1), (6, "eve", "dev", 5),
             (7, "fay", "dev", None)]


@pytest.fixture(autouse=True)
def _fresh_rows(database: Any) -> None:
    values = ", ".join(f"({e[0]}, '{e[1]}', '{e[2]}', NULL)" for e in EMPLOYEES)
    links = "".join(f"UPDATE employees SET manager_id = {e[3]} WHERE id = {e[0]};\n"
                    for e in EMPLOYEES if e[3] is not None)
    database.run_script("UPDATE employees SET manager_id = NULL;\nDELETE FROM employees;\n"
                        f"INSERT INTO employees (id, name, dept, manager_id) VALUES {values};\n"
                        + links)


def _stored(database: Any) -> dict[int, tuple[str, str, int | None]]:
    return {r[0]: (r[1], r[2], r[3]) for r in
            database.query("SELECT id, name, dept, manager_id FROM employees")}


def _managed_by(name: str) -> dict[str, Any]:
    """Employees whose manager (the many-to-one side of the self reference) is ``name``."""
    return {"expressions": [{"relationship": "manager_id", "scope": "filterParent",
                             "expressions": [{"field": "name", "operator": "eq",
                                              "value": name}]}]}


def _managers_of(dept: str) -> dict[str, Any]:
    """Employees with at least one report in ``dept`` (the one-to-many side)."""
    return {"expressions": [{"relationship": "employees_manager_id",
                             "expressions": [{"field": "dept", "operator": "eq",
                                              "value": dept}]}]}


def test_mass_update_through_a_self_reference(client: httpx.Client, database: Any) -> None:
    expected = {e[0] for e in EMPLOYEES if e[3] == 2}
    r = client.put("/employees/filter?dry_run=true", json=_managed_by("ann") | {
        "updateData": {"dept": "sec"}})
    assert r.status_code == 200, r.text
    assert r.json() == {"updated": len(expected), "dry_run": True}
    r = client.put("/employees/filter", json=_managed_by("ann") | {"updateData": {"dept": "sec"}})
    assert r.status_code == 200, r.text
    assert r.json() == {"updated": len(expected)}
    stored = _stored(database)
    assert {k for k, v in stored.items() if v[1] == "sec"} == expected
    # the other side of the relationship: managers with a report in "dev"
    managers = {e[3] for e in EMPLOYEES if e[2] == "dev" and e[3] is not None}
    r = client.put("/employees/filter", json=_managers_of("dev") | {"updateData": {"name": "m"}})
    assert r.status_code == 200, r.text
    assert r.json() == {"updated": len(managers)}
    assert {k for k, v in _stored(database).items() if v[0] == "m"} == managers


def test_mass_update_through_a_self_reference_respects_max_affected(
        client: httpx.Client, database: Any) -> None:
    before = _stored(database)
    r = client.put("/employees/filter?max_affected=1",
                   json=_managed_by("ann") | {"updateData": {"dept": "sec"}})
    assert r.status_code == 409, r.text
    assert _stored(database) == before


def test_mass_delete_through_a_self_reference(client: httpx.Client, database: Any) -> None:
    # leaves only: nobody reports to them, so deleting them breaks no key
    leaves = {e[0] for e in EMPLOYEES if e[3] is not None
              and not any(x[3] == e[0] for x in EMPLOYEES)}
    under_ann_or_dee = {e[0] for e in EMPLOYEES if e[3] in (2, 5)}
    assert under_ann_or_dee <= leaves
    payload = {"expressions": [{"relationship": "manager_id", "expressions": [
        {"field": "name", "operator": "in", "value": ["ann", "dee"]}]}]}
    r = client.request("DELETE", "/employees/filter?dry_run=true", json=payload)
    assert r.status_code == 200, r.text
    assert r.json() == {"deleted": len(under_ann_or_dee), "dry_run": True}
    r = client.request("DELETE", "/employees/filter", json=payload)
    assert r.status_code == 200, r.text
    assert r.json() == {"deleted": len(under_ann_or_dee)}
    assert set(_stored(database)) == {e[0] for e in EMPLOYEES} - under_ann_or_dee
    # deleting employees with no reports left, through the one-to-many side
    r = client.request("DELETE", "/employees/filter", json={"expressions": [
        {"operator": "NOT", "expressions": [{"relationship": "employees_manager_id"}]},
        {"field": "manager_id", "operator": "isnull", "value": False}]})
    assert r.status_code == 200, r.text
    remaining = {e[0] for e in EMPLOYEES} - under_ann_or_dee
    still_managing = {e[3] for e in EMPLOYEES if e[0] in remaining and e[3] is not None}
    gone = {e[0] for e in EMPLOYEES if e[0] in remaining and e[3] is not None
            and e[0] not in still_managing}
    assert r.json() == {"deleted": len(gone)}
    assert set(_stored(database)) == remaining - gone


def test_having_and_sort_inside_a_relationship_are_a_422(client: httpx.Client) -> None:
    for key, value, where in (("having", [], "having"), ("sort", [], "sort"),
                              ("group_by", ["nope"], "group_by[0]")):
        for payload_filter in ([], [{"field": "id", "operator": "eq", "value": -1}]):
            # also when no parent row matches: the payload is wrong either way
            r = client.post("/employees/filter", json={"expressions": [*payload_filter, {
                "relationship": "employees_manager_id", "aggregations": {
                    "functions": [{"type": "COUNT", "alias": "n"}], key: value}}]})
            assert r.status_code == 422, r.text
            error = r.json()["error"]
            assert error["details"][0]["path"] == \
                f"expressions[{len(payload_filter)}].aggregations.{where}"
            assert ("relationship" if key != "group_by" else "unknown field") \
                in error["message"], error


def test_list_documents_the_filter_query_parameter(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    listing = spec["paths"]["/employees"]["get"]
    params = {p["name"]: p for p in listing["parameters"] if p.get("in") == "query"}
    assert "filter" in params, sorted(params)
    param = params["filter"]
    assert param["schema"]["type"] == "string"
    assert "JSON" in param["description"]
    # the documented parameter really works
    r = client.get("/employees", params={"filter": '{"expressions": [{"field": "dept", '
                                                   '"operator": "eq", "value": "ops"}]}'})
    assert r.status_code == 200, r.text
    assert sorted(e["id"] for e in r.json()["data"]) == [e[0] for e in EMPLOYEES
                                                         if e[2] == "ops"]
