"""The OpenAPI document over a messy schema, fetched over HTTP and validated, on
SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from openapi_spec_validator import validate

from swain.contrib.testing import FreshDatabase, LiveServer, write_config
from swain.core import Config, Schema, create_app, hookimpl, load_config

#: The console script installed next to this interpreter.
SWAIN = str(Path(sys.executable).parent / "swain")

_COMMON_TAIL = """
CREATE TABLE "select" (id INTEGER PRIMARY KEY, "from" VARCHAR(20) NOT NULL, "where" INTEGER);
CREATE TABLE employees (id INTEGER PRIMARY KEY, name VARCHAR(50) NOT NULL,
    manager_id INTEGER REFERENCES employees (id));
CREATE TABLE "auth" (id INTEGER PRIMARY KEY, note VARCHAR(50));
CREATE TABLE "error" (id INTEGER PRIMARY KEY, message VARCHAR(50));
CREATE TABLE error_body (id INTEGER PRIMARY KEY, note VARCHAR(50));
CREATE TABLE "line item" (id INTEGER PRIMARY KEY, label VARCHAR(20));
CREATE TABLE line_item (id INTEGER PRIMARY KEY, label VARCHAR(20));
CREATE TABLE "audit log" (message VARCHAR(200) NOT NULL, happened_at TIMESTAMP);
CREATE VIEW "customer totals" AS SELECT o.customer_id AS customer_id, COUNT(*) AS orders
    FROM "order" o GROUP BY o.customer_id;
INSERT INTO "Customers" ("Full Name", email, password_hash, status, balance)
    VALUES ('Ada Lovelace', 'ada@example.com', 'x', 'active', 10.50);
INSERT INTO "order" (id, customer_id, total, placed_at) VALUES (1, 1, 12.34, '2024-01-02 03:04:05');
INSERT INTO "order items" (order_id, line_no, qty, "unit price")
    VALUES (1, 1, 2, 1.25), (1, 2, 1, 9.99);
INSERT INTO employees (id, name, manager_id) VALUES (1, 'Boss', NULL), (2, 'Worker', 1)
"""

DDL = {
    "postgresql": """
CREATE TYPE customer_status AS ENUM ('active', 'blocked');
CREATE TABLE "Customers" (
    "Customer ID" SERIAL PRIMARY KEY,
    "Full Name" VARCHAR(100) NOT NULL,
    email VARCHAR(200) NOT NULL UNIQUE,
    password_hash VARCHAR(200),
    status customer_status NOT NULL DEFAULT 'active',
    profile JSONB,
    external_id UUID,
    balance NUMERIC(12, 2) NOT NULL DEFAULT 0,
    avatar BYTEA,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    birthday DATE,
    tags TEXT[]
);
CREATE TABLE "order" (id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES "Customers" ("Customer ID"),
    total NUMERIC(10, 2) NOT NULL, placed_at TIMESTAMP NOT NULL);
CREATE TABLE "order items" (order_id INTEGER NOT NULL REFERENCES "order" (id),
    line_no INTEGER NOT NULL, qty INTEGER NOT NULL, "unit price" NUMERIC(8, 2),
    doubled INTEGER GENERATED ALWAYS AS (qty * 2) STORED,
    PRIMARY KEY (order_id, line_no));
""" + _COMMON_TAIL,
    "mysql": """
CREATE TABLE `Customers` (
    `Customer ID` INTEGER AUTO_INCREMENT PRIMARY KEY,
    `Full Name` VARCHAR(100) NOT NULL,
    email VARCHAR(200) NOT NULL UNIQUE,
    password_hash VARCHAR(200),
    status ENUM('active', 'blocked') NOT NULL DEFAULT 'active',
    profile JSON,
    external_id UUID,
    balance DECIMAL(12, 2) NOT NULL DEFAULT 0,
    avatar VARBINARY(255),
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    birthday DATE
);
CREATE TABLE `order` (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL,
    total DECIMAL(10, 2) NOT NULL, placed_at DATETIME NOT NULL,
    FOREIGN KEY (customer_id) REFERENCES `Customers` (`Customer ID`));
CREATE TABLE `order items` (order_id INTEGER NOT NULL, line_no INTEGER NOT NULL,
    qty INTEGER NOT NULL, `unit price` DECIMAL(8, 2),
    doubled INTEGER AS (qty * 2) STORED,
    PRIMARY KEY (order_id, line_no), FOREIGN KEY (order_id) REFERENCES `order` (id));
""" + _COMMON_TAIL.replace('"', "`").replace("TIMESTAMP)", "DATETIME)"),
    "sqlite": """
CREATE TABLE "Customers" (
    "Customer ID" INTEGER PRIMARY KEY,
    "Full Name" VARCHAR(100) NOT NULL,
    email VARCHAR(200) NOT NULL UNIQUE,
    password_hash VARCHAR(200),
    status VARCHAR(10) NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'blocked')),
    profile JSON,
    external_id UUID,
    balance NUMERIC(12, 2) NOT NULL DEFAULT 0,
    avatar BLOB,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    birthday DATE
);
CREATE TABLE "order" (id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES "Customers" ("Customer ID"),
    total NUMERIC(10, 2) NOT NULL, placed_at TIMESTAMP NOT NULL);
CREATE TABLE "order items" (order_id INTEGER NOT NULL REFERENCES "order" (id),
    line_no INTEGER NOT NULL, qty INTEGER NOT NULL, "unit price" NUMERIC(8, 2),
    doubled INTEGER GENERATED ALWAYS AS (qty * 2) STORED,
    PRIMARY KEY (order_id, line_no));
""" + _COMMON_TAIL,
}

SWAIN_CONFIG = {"project": {"name": "messy shop", "description": "A schema nobody designed."},
                "api": {"max_page_size": 200}}


class SecretPasswords:
    """A stand-in for the auth mapping: marks the password column secret."""

    @hookimpl
    def swain_prepare_schema(self, schema: Schema, config: Config) -> None:
        table = schema.tables["Customers"]
        column = table.column("password_hash")
        assert column is not None
        column.secret = True


class ContributesSecurity:
    """A stand-in for an auth plugin: adds a security scheme through the hook."""

    @hookimpl
    def swain_spec_contributions(self, spec: Any, schema: Schema, config: Config) -> None:
        spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer",
                                                       "bearerFormat": "JWT"})
        spec.path(path="/auth/ping", operations={"get": {
            "operationId": "authPing", "tags": ["auth"], "summary": f"{len(schema.tables)} tables",
            "responses": {"200": {"description": "pong", "content": {"application/json": {
                "schema": {"type": "object", "description": "Anything."}}}}}}})


@pytest.fixture(scope="module")
def server(config_path: Path) -> Iterator[LiveServer]:
    config, pm = load_config(config_path, "development", environ={},
                             plugins=[SecretPasswords(), ContributesSecurity()])
    with LiveServer(create_app(config, pm)) as live:
        yield live


@pytest.fixture(scope="module")
def doc(client: httpx.Client) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    return dict(response.json())


def _operations(doc: dict[str, Any]) -> dict[str, tuple[str, str]]:
    found = {}
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if method in ("get", "put", "post", "patch", "delete"):
                assert operation["operationId"] not in found, operation["operationId"]
                found[operation["operationId"]] = (method, path)
    return found


def _schema(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return dict(doc["components"]["schemas"][name])


def test_document_is_valid_openapi_3_0(doc: dict[str, Any]) -> None:
    assert doc["openapi"] == "3.0.3"
    validate(doc)
    assert doc["info"]["title"] == "messy shop"
    assert doc["info"]["description"].startswith("A schema nobody designed.")
    assert doc["servers"][0]["url"] == "/"


def test_every_spelling_of_the_document_is_the_same(client: httpx.Client,
                                                    doc: dict[str, Any]) -> None:
    assert client.get("/swagger/doc.json").json() == doc
    response = client.get("/openapi.yaml")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/yaml")
    assert yaml.safe_load(response.text) == doc


def test_tags_and_operation_ids(doc: dict[str, Any]) -> None:
    tags = {t["name"]: t for t in doc["tags"]}
    assert set(tags) >= {"Customers", "order", "order items", "select", "employees", "auth",
                         "error", "line item", "line_item", "audit log", "customer totals"}
    ops = _operations(doc)
    assert ops["listCustomers"] == ("get", "/Customers")
    assert ops["createCustomers"] == ("post", "/Customers")
    assert ops["getByIdCustomers"] == ("get", "/Customers/{id}")
    assert ops["updateByIdCustomers"] == ("put", "/Customers/{id}")
    assert ops["patchByIdCustomers"] == ("patch", "/Customers/{id}")
    assert ops["deleteByIdCustomers"] == ("delete", "/Customers/{id}")
    assert ops["countAllCustomers"] == ("get", "/Customers/count")
    assert ops["listOrder"] == ("get", "/order")
    assert ops["getByIdSelect"] == ("get", "/select/{id}")
    assert ops["listOrderItems"] == ("get", "/order%20items")
    assert ops["getByIdOrderItems"] == ("get", "/order%20items/{id}")
    # A table colliding with a reserved path is documented only under /tables/.
    assert ops["listAuth"] == ("get", "/tables/auth")
    assert ops["getByIdAuth"] == ("get", "/tables/auth/{id}")
    assert not any(path.startswith("/auth/") and "Auth" in op for op, (_, path) in ops.items())
    # Names that would collide get a suffix, on the model and its operations alike.
    assert tags["error"]["x-swain-model"] == "Error2"
    assert ops["listError2"] == ("get", "/error")
    assert {tags["line item"]["x-swain-model"], tags["line_item"]["x-swain-model"]} == \
        {"LineItem", "LineItem2"}
    for op, (method, path) in ops.items():
        if op != "authPing":
            operation = doc["paths"][path][method]
            assert len(operation["tags"]) == 1 and operation["tags"][0] in tags


def test_read_only_tables_have_no_writes(doc: dict[str, Any]) -> None:
    ops = _operations(doc)
    assert ops["listAuditLog"] == ("get", "/audit%20log")
    assert ops["countAllAuditLog"] == ("get", "/audit%20log/count")
    assert ops["listCustomerTotals"] == ("get", "/customer%20totals")
    for model in ("AuditLog", "CustomerTotals"):
        for verb in ("create", "getById", "updateById", "patchById", "deleteById"):
            assert f"{verb}{model}" not in ops
        assert f"{model}Create" not in doc["components"]["schemas"]
        assert f"{model}Update" not in doc["components"]["schemas"]
    assert "/audit%20log/{id}" not in doc["paths"]
    assert "post" not in doc["paths"]["/audit%20log"]


def test_models_types_and_formats(doc: dict[str, Any], dialect: str) -> None:
    row = _schema(doc, "Customers")["properties"]
    assert "password_hash" not in row
    assert row["Customer ID"]["type"] == "integer" and row["Customer ID"]["format"] == "int64"
    assert row["Full Name"] == {"type": "string", "maxLength": 100}
    assert row["balance"]["type"] == "string" and row["balance"]["format"] == "decimal"
    assert "nullable" not in row["balance"]
    assert row["external_id"]["format"] == "uuid" and row["external_id"]["nullable"] is True
    assert row["avatar"]["type"] == "string" and row["avatar"]["format"] == "byte"
    assert row["created_at"]["format"] == "date-time"
    assert row["birthday"]["format"] == "date"
    assert "type" not in row["profile"] and row["profile"]["nullable"] is True
    assert row["status"]["enum"] == ["active", "blocked"]
    if dialect == "postgresql":
        assert row["tags"]["type"] == "array" and row["tags"]["items"]["type"] == "string"
    order = _schema(doc, "Order")["properties"]
    assert order["placed_at"]["format"] == "date-time"
    assert order["total"]["format"] == "decimal"
    items = _schema(doc, "OrderItems")["properties"]
    assert items["doubled"]["readOnly"] is True
    assert items["unit price"]["nullable"] is True


def test_create_update_and_page_models(doc: dict[str, Any], dialect: str) -> None:
    create = _schema(doc, "CustomersCreate")
    # Not null without a default: required.  Serial key, defaults and nullable: optional.
    assert sorted(create["required"]) == ["Full Name", "email"]
    assert "password_hash" not in create["properties"]
    # a serial key is written only where its sequence follows written values
    assert ("Customer ID" in create["properties"]) == (dialect != "postgresql")
    update = _schema(doc, "CustomersUpdate")
    assert "required" not in update and update["minProperties"] == 1
    assert set(update["properties"]) == set(create["properties"])
    items_create = _schema(doc, "OrderItemsCreate")
    assert sorted(items_create["required"]) == ["line_no", "order_id", "qty"]
    assert "doubled" not in items_create["properties"]
    select_create = _schema(doc, "SelectCreate")
    # SQLite's INTEGER PRIMARY KEY is the rowid, which fills itself; elsewhere it must be given.
    expected = ["from"] if dialect == "sqlite" else ["from", "id"]
    assert sorted(select_create["required"]) == expected
    page = _schema(doc, "CustomersPage")
    assert set(page["required"]) == {"data", "total", "page", "page_size", "total_pages"}
    assert page["properties"]["data"]["items"] == {"$ref": "#/components/schemas/Customers"}
    error = _schema(doc, "Error")
    assert error["properties"]["error"] == {"$ref": "#/components/schemas/ErrorBody"}
    assert _schema(doc, "ErrorBody")["required"] == ["code", "message"]
    for name in ("BadRequest", "Conflict", "PayloadTooLarge", "ValidationError",
                 "ServiceUnavailable"):
        response = doc["components"]["responses"][name]
        assert response["content"]["application/json"]["schema"] == \
            {"$ref": "#/components/schemas/Error"}
    create_op = doc["paths"]["/Customers"]["post"]
    assert create_op["responses"]["409"] == {"$ref": "#/components/responses/Conflict"}
    assert create_op["requestBody"]["content"]["application/json"]["schema"] == \
        {"$ref": "#/components/schemas/CustomersCreate"}


def test_parameters(doc: dict[str, Any]) -> None:
    params = {p["name"]: p for p in doc["paths"]["/Customers"]["get"]["parameters"]}
    assert {"page", "page_size", "sort", "fields", "count"} <= set(params)
    assert params["page_size"]["schema"]["maximum"] == 200
    assert "password_hash" not in params
    assert "-password_hash" not in params["sort"]["schema"]["items"]["enum"]
    assert "-balance" in params["sort"]["schema"]["items"]["enum"]
    assert params["status"]["in"] == "query" and params["status"]["schema"]["enum"] == \
        ["active", "blocked"]
    assert params["Full Name"]["schema"]["type"] == "string"
    single = doc["paths"]["/Customers/{id}"]["parameters"][0]
    assert single["in"] == "path" and single["required"] is True
    assert single["schema"]["type"] == "integer"
    composite = doc["paths"]["/order%20items/{id}"]["parameters"][0]
    assert composite["name"] == "id" and composite["style"] == "simple"
    assert composite["explode"] is False
    assert composite["schema"]["minItems"] == composite["schema"]["maxItems"] == 2
    assert "order_id, line_no" in composite["description"]


def test_plugin_contributions_and_secrets(doc: dict[str, Any], client: httpx.Client) -> None:
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert doc["paths"]["/auth/ping"]["get"]["operationId"] == "authPing"
    assert "password_hash" not in json.dumps(doc)


def _free_form_objects(node: Any, path: str = "") -> Iterator[str]:
    """Paths of ``type: object`` schemas that say nothing about their members."""
    if isinstance(node, dict):
        if node.get("type") == "object" and not {"properties", "additionalProperties", "allOf",
                                                 "anyOf", "oneOf"} & node.keys():
            yield path
        for key, value in node.items():
            yield from _free_form_objects(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _free_form_objects(value, f"{path}/{index}")


def _inline_objects(schema: Any, path: str) -> Iterator[str]:
    """Paths of object schemas with properties nested inside a component (not $refs)."""
    if isinstance(schema, dict):
        for key, value in schema.items():
            if isinstance(value, dict) and value.get("properties") and "$ref" not in value:
                yield f"{path}/{key}"
            yield from _inline_objects(value, f"{path}/{key}")
    elif isinstance(schema, list):
        for index, value in enumerate(schema):
            yield from _inline_objects(value, f"{path}/{index}")


def test_components_are_named_and_typed_for_generators(doc: dict[str, Any]) -> None:
    """Nested objects of the error envelope and the bulk results are components of their
    own (generated clients get ErrorBody, not Error_error), and every free-form object
    says additionalProperties, plugins' contributions included."""
    schemas = doc["components"]["schemas"]
    for name in ("Error", "ErrorBody", "ErrorDetail", "BulkCreateResult", "BulkSuccess",
                 "BulkFailure", "BulkErrorResult", "FilterRequest", "FilterExpression",
                 "FilterAggregations", "SqlPreview", "CustomersFilterQueryResponse"):
        assert list(_inline_objects(schemas[name], name)) == [], name
    preview = doc["paths"]["/Customers/filter/query"]["post"]["responses"]["200"]
    assert preview["content"]["application/json"]["schema"] == \
        {"$ref": "#/components/schemas/CustomersFilterQueryResponse"}
    assert schemas["ErrorBody"]["properties"]["details"]["items"] == \
        {"$ref": "#/components/schemas/ErrorDetail"}
    assert schemas["BulkFailure"]["properties"]["error"] == \
        {"$ref": "#/components/schemas/ErrorBody"}
    assert schemas["BulkCreateResult"]["properties"]["failed"]["items"] == \
        {"$ref": "#/components/schemas/BulkFailure"}
    bulk = doc["paths"]["/Customers/bulk"]["post"]["responses"]["422"]
    assert bulk["content"]["application/json"]["schema"] == \
        {"$ref": "#/components/schemas/BulkErrorResult"}
    assert list(_free_form_objects(doc)) == []
    ping = doc["paths"]["/auth/ping"]["get"]["responses"]["200"]
    assert ping["content"]["application/json"]["schema"] == \
        {"type": "object", "description": "Anything.", "additionalProperties": True}
    # A table named like one of these components keeps out of its way.
    tags = {tag["name"]: tag["x-swain-model"] for tag in doc["tags"]}
    assert tags["error_body"] == "ErrorBody2"
    assert schemas["ErrorBody2"]["properties"]["note"]["type"] == "string"


def _reachable(doc: dict[str, Any], node: Any, seen: set[str]) -> Iterator[dict[str, Any]]:
    """Every schema object reachable from ``node``, following $refs once each."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if ref is not None:
            if ref not in seen:
                seen.add(ref)
                yield from _reachable(doc, doc["components"]["schemas"][ref.split("/")[-1]], seen)
            return
        yield node
        for value in node.values():
            yield from _reachable(doc, value, seen)
    elif isinstance(node, list):
        for value in node:
            yield from _reachable(doc, value, seen)


def test_filter_bodies_and_rows_are_shaped_for_generated_clients(doc: dict[str, Any]) -> None:
    """Every body that takes a filter is plain objects: no oneOf or anyOf (a generated
    Python client empties a dict passed for one) and no enum (an untyped TypeScript
    literal `direction: "desc"` is a string; the columns of `updateData` keep their
    own enums); an expression is one object whose members cover conditions, groups
    and relationships. Rows are typed and open, so clients keep the included
    relationships and `aggregations` a filter adds."""
    bodies = {(method, path): op["requestBody"] for path, ops in doc["paths"].items()
              for method, op in ops.items()
              if isinstance(op, dict) and op.get("operationId", "").startswith(
                  ("filter", "count", "updateByFilter", "deleteByFilter"))
              and "requestBody" in op}
    assert {("post", "/Customers/filter"), ("post", "/Customers/count"),
            ("put", "/Customers/filter"), ("delete", "/Customers/filter"),
            ("post", "/Customers/filter/query")} <= set(bodies)
    for where, body in bodies.items():
        for schema in _reachable(doc, body, {"#/components/schemas/CustomersUpdate"}):
            assert not {"oneOf", "anyOf", "enum"} & schema.keys(), (where, schema)
    expression = doc["components"]["schemas"]["FilterExpression"]
    assert expression["type"] == "object" and "required" not in expression
    assert {"field", "operator", "value", "expressions", "relationship", "scope", "include",
            "fields", "sort", "aggregations"} == set(expression["properties"])
    assert expression["properties"]["value"]["nullable"] is True
    row = doc["components"]["schemas"]["Customers"]
    assert row["additionalProperties"] is True and row["properties"]["email"]["type"] == "string"
    for response in ("CustomersPage", "CustomersFilterResponse"):
        assert doc["components"]["schemas"][response]["properties"]["data"]["items"] == \
            {"$ref": "#/components/schemas/Customers"}


def test_documented_requests_work(doc: dict[str, Any], client: httpx.Client) -> None:
    """Requests built from the document's own paths reach the rows it describes."""
    listed = client.get("/order%20items", params={"sort": "-line_no", "fields": "line_no,qty"})
    assert listed.status_code == 200, listed.text
    assert listed.json()["data"] == [{"line_no": 2, "qty": 1}, {"line_no": 1, "qty": 2}]
    assert client.get("/order%20items/1,2").json()["unit price"] == "9.99"
    assert client.get("/tables/auth/count").json() == {"count": 0}
    assert client.post("/audit%20log", json={"message": "x"}).status_code == 405


def test_document_follows_a_reload(server: LiveServer, client: httpx.Client,
                                   database: FreshDatabase, doc: dict[str, Any]) -> None:
    assert "/late" not in doc["paths"]
    database.run_script("CREATE TABLE late (id INTEGER PRIMARY KEY, name VARCHAR(10))")
    try:
        assert client.post("/_swain/reload").status_code == 200
        fresh = client.get("/openapi.json").json()
        assert fresh["paths"]["/late"]["get"]["operationId"] == "listLate"
        assert yaml.safe_load(client.get("/openapi.yaml").text)["paths"]["/late"]
        validate(fresh)
    finally:
        database.run_script("DROP TABLE late")
        client.post("/_swain/reload")


def test_tables_never_take_a_shared_component_name(server: LiveServer, client: httpx.Client,
                                                  database: FreshDatabase) -> None:
    """Tables named like core's or a plugin's own components get a numbered model."""
    clashing = ("filter_request", "bulk_success", "count_result")
    database.run_script(";".join(f"CREATE TABLE {name} (id INTEGER PRIMARY KEY, note VARCHAR(10))"
                                 for name in clashing))
    try:
        assert client.post("/_swain/reload").status_code == 200
        r = client.get("/openapi.json")
        assert r.status_code == 200, r.text
        fresh = r.json()
        validate(fresh)
        models = {t["name"]: t["x-swain-model"] for t in fresh["tags"]}
        assert [models[name] for name in clashing] == ["FilterRequest2", "BulkSuccess2",
                                                       "CountResult2"]
        schemas = fresh["components"]["schemas"]
        assert "expressions" in schemas["FilterRequest"]["properties"]
        assert set(schemas["FilterRequest2"]["properties"]) == {"id", "note"}
    finally:
        database.run_script(";".join(f"DROP TABLE {name}" for name in clashing))
        client.post("/_swain/reload")


def test_cli_writes_the_document(config_path: Path, tmp_path: Path, doc: dict[str, Any]) -> None:
    out = tmp_path / "spec.yaml"
    result = subprocess.run(
        [SWAIN, "--config", str(config_path), "openapi",
         "-o", str(out)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    written = yaml.safe_load(out.read_text())
    validate(written)
    # Without a serving origin only the public URL is listed; the test plugins are
    # not installed for the command line, so their contributions are absent.
    assert [s["url"] for s in written["servers"]] == ["http://127.0.0.1:8000"]
    assert set(_operations(written)) == set(_operations(doc)) - {"authPing"}
    # Secrets are marked by plugins; this command line has none, so the column shows.
    assert "password_hash" in written["components"]["schemas"]["Customers"]["properties"]
    as_json = subprocess.run(
        [SWAIN, "--config", str(config_path), "openapi",
         "--format", "json"], capture_output=True, text=True, timeout=120)
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["paths"].keys() == written["paths"].keys()


def test_cli_names_an_unconfigured_stage(tmp_path: Path, database: FreshDatabase) -> None:
    path = write_config(tmp_path, database.swain_url)
    result = subprocess.run(
        [SWAIN, "--config", str(path), "--stage", "production",
         "openapi"], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "production" in result.stderr
