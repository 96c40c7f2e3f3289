"""The OpenAPI 3.0.3 document, built live from the loaded schema.

Served at ``/openapi.json``, ``/openapi.yaml`` and ``/swagger/doc.json``
(public routes), built once per catalog and cached in ``runtime.documents``
(a schema reload clears it).  ``swain openapi`` writes the same document
without serving.

Shape of the document:

* one tag per visible table (``x-swain-model`` on the tag carries the model
  name ``{M}`` that other plugins should use for their per-table components);
* operationIds ``list{M}``, ``create{M}``, ``getById{M}``, ``updateById{M}``
  (PUT), ``patchById{M}`` (PATCH, the same update), ``deleteById{M}`` and
  ``countAll{M}``; no by-id operations without a primary key, no writes on
  read-only tables and views;
* components ``{M}`` (row: the columns typed, open to the included relationships
  and ``aggregations`` a filter adds), ``{M}Create``, ``{M}Update``, ``{M}Page``,
  ``CountResult``, ``Error`` (with ``ErrorBody`` and ``ErrorDetail``, named so
  generated clients get stable class names) and one response per error status;
  free-form objects say ``additionalProperties: true`` (:func:`explicit_free_form`).

``{M}`` is :attr:`Table.model_name`, made unique: when two tables would share
a name (``Order`` and ``order``, ``order items`` and ``order_items``) or a
derived component would collide with another one (a table ``error``), the
later table in key order gets a numeric suffix (``Order2``).

Servers: the served document lists the relative URL ``/`` first, so Swagger
UI's "Try it out" calls the server that served the page, whatever address
the browser used; ``api.public_url`` follows as the second choice.  A document
written by ``swain openapi`` has no serving origin, so it lists only
``api.public_url``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import click
import orjson
import yaml
from aiohttp import web
from apispec import APISpec

from swain.core import (
    RUNTIME,
    Column,
    Config,
    Runtime,
    Schema,
    ServiceUnavailable,
    Table,
    hookimpl,
    json_response,
    open_runtime,
    public,
)
from swain.core.codec import dumps
from swain.core.tableapi import LIST_PARAMETERS

from .components import ref as _ref
from .components import table_path
from .query import AFTER_PARAMETER, ENVELOPE_PROPERTIES, add_query_paths, count_parameter

OPENAPI_VERSION = "3.0.3"
_CACHE_KEY = "openapi"

#: Component names core defines besides the per-table ones; table models never take them.
FIXED_SCHEMAS = ("Error", "ErrorBody", "ErrorDetail", "CountResult")
#: Per-table component suffixes, reserved for every table so no two tables' names can meet
#: (``FilterResponse`` and ``FilterQueryResponse`` belong to the query API).
MODEL_SUFFIXES = ("", "Create", "Update", "Page", "FilterResponse", "FilterQueryResponse")

#: (status, component name, description) of the shared error responses.
ERROR_RESPONSES: tuple[tuple[int, str, str], ...] = (
    (400, "BadRequest", "Malformed request (e.g. the body is not valid JSON)."),
    (401, "Unauthorized", "Authentication is required or the credential is invalid."),
    (403, "Forbidden", "The caller may not do this."),
    (404, "NotFound", "No such row or table."),
    (408, "RequestTimeout", "The request body did not arrive in time."),
    (409, "Conflict", "A unique or foreign-key constraint was violated; the message names it."),
    (413, "PayloadTooLarge", "The request body is too large."),
    (415, "UnsupportedMediaType", "The body is not JSON (Content-Type: application/json)."),
    (422, "ValidationError", "A value is invalid; `details` name the fields."),
    (503, "ServiceUnavailable", "The database is unavailable; retry later."),
)
_ERROR_NAMES = {status: name for status, name, _ in ERROR_RESPONSES}


# -- names ----------------------------------------------------------------------


def model_names(schema: Schema, shared: Iterable[str] = ()) -> dict[str, str]:
    """Table key → its unique model name ``{M}`` (see the module docstring), clear of
    the ``shared`` component names core and the plugins register."""
    taken = {*FIXED_SCHEMAS, *shared}
    names: dict[str, str] = {}
    for table in sorted(schema.visible_tables, key=lambda t: t.key):
        base = table.model_name
        candidate, n = base, 2
        while any(candidate + suffix in taken for suffix in MODEL_SUFFIXES):
            candidate, n = f"{base}{n}", n + 1
        taken.update(candidate + suffix for suffix in MODEL_SUFFIXES)
        names[table.key] = candidate
    return names


def writable(table: Table) -> bool:
    """Whether the table API accepts writes (mirrors the table API's own checks)."""
    if table.kind == "table" and not table.primary_key:
        return False
    return bool(table.updatable)


# -- column schemas -------------------------------------------------------------------

_SCALARS: dict[str, dict[str, Any]] = {
    "integer": {"type": "integer", "format": "int64"},
    "number": {"type": "number", "format": "double"},
    "decimal": {"type": "string", "format": "decimal"},
    "string": {"type": "string"},
    "boolean": {"type": "boolean"},
    "date": {"type": "string", "format": "date"},
    "datetime": {"type": "string", "format": "date-time"},
    "datetime_tz": {"type": "string", "format": "date-time"},
    "time": {"type": "string", "format": "time"},
    "uuid": {"type": "string", "format": "uuid"},
    "json": {},
    "binary": {"type": "string", "format": "byte"},
    "interval": {"type": "string", "format": "duration"},
}

_NOTES = {
    "decimal": "Exact decimal, returned as a string; accepted as a string or a number.",
    "datetime": "Timestamp without time zone (ISO-8601).",
    "datetime_tz": "Timestamp with time zone (ISO-8601); the offset is kept.",
    "binary": "Binary data, base64-encoded.",
    "json": "Any JSON value.",
    "interval": "ISO-8601 duration, e.g. P1DT2H.",
}


def value_schema(kind: str, column: Column | None = None) -> dict[str, Any]:
    """The JSON schema of one value of ``kind`` (no nullability)."""
    if kind == "array":
        item = column.item_kind if column is not None else None
        return {"type": "array", "items": value_schema(item or "string")}
    schema = dict(_SCALARS.get(kind, {"type": "string"}))
    if column is not None:
        if column.enum_values:
            schema["enum"] = list(column.enum_values)
        if kind == "string" and column.max_length:
            schema["maxLength"] = column.max_length
    return schema


def column_schema(column: Column) -> dict[str, Any]:
    """The property schema of a column in a row model."""
    if column.untyped:
        return {"description": "No declared type: any value, as stored.", "nullable": True}
    schema = value_schema(column.kind, column)
    notes = [column.comment] if column.comment else []
    if column.kind in _NOTES:
        notes.append(_NOTES[column.kind])
    if column.kind == "decimal" and column.precision is not None:
        notes.append(f"numeric({column.precision},{column.scale or 0}).")
    if notes:
        schema["description"] = " ".join(notes)
    if column.nullable:
        schema["nullable"] = True
        if schema.get("enum"):
            # OpenAPI 3.0: a nullable enum must list null to accept it.
            schema["enum"] = [*schema["enum"], None]
    if column.generated:
        schema["readOnly"] = True
    return schema


def _json_body(name: str) -> dict[str, Any]:
    return {"application/json": {"schema": _ref(name)}}


def _errors(*statuses: int) -> dict[int, Any]:
    return {s: {"$ref": f"#/components/responses/{_ERROR_NAMES[s]}"} for s in statuses}


# -- components -----------------------------------------------------------------------


def error_schema() -> dict[str, Any]:
    """The error envelope: ``{"error": ErrorBody}``."""
    return {"type": "object", "required": ["error"], "properties": {"error": _ref("ErrorBody")}}


def error_body_schema() -> dict[str, Any]:
    """The inside of the envelope; bulk results reuse it for each failed row."""
    return {
        "type": "object",
        "required": ["code", "message"],
        "properties": {
            "code": {"type": "string", "example": "validation_error"},
            "message": {"type": "string"},
            "details": {"type": "array", "items": _ref("ErrorDetail")},
            "request_id": {"type": "string"},
        },
    }


def error_detail_schema() -> dict[str, Any]:
    """One invalid field of a validation error."""
    return {"type": "object", "required": ["path", "message"],
            "properties": {"path": {"type": "string"}, "message": {"type": "string"}}}


def _table_components(spec: APISpec, table: Table, model: str, config: Config,
                      sequences_follow: bool) -> None:
    columns = table.visible_columns
    # Open: a filtered row carries its included relationships and `aggregations`
    # under their names, and generated clients must keep them (a closed model drops them).
    spec.components.schema(model, {
        "type": "object",
        "description": f"A row of {table.kind} {table.key!r}. Rows from `/filter` also "
                       "carry included relationships and `aggregations` under their names.",
        "properties": {c.name: column_schema(c) for c in columns},
        "additionalProperties": True,
    })
    spec.components.schema(f"{model}Page", {
        "type": "object",
        "required": ["data", "total", "page", "page_size", "total_pages"],
        "properties": {
            "data": {"type": "array", "items": _ref(model)},
            **ENVELOPE_PROPERTIES,
        },
    })
    if not writable(table):
        return
    explicit_keys = bool(config.api.allow_explicit_keys) or sequences_follow
    inputs = [c for c in table.columns
              if c.writable_by_clients and (explicit_keys or not c.autoincrement)]
    create: dict[str, Any] = {
        "type": "object",
        "properties": {c.name: input_schema(c) for c in inputs},
    }
    required = [c.name for c in inputs if c.required_on_create]
    if required:
        create["required"] = required
    spec.components.schema(f"{model}Create", create)
    spec.components.schema(f"{model}Update", {
        "type": "object",
        "minProperties": 1,
        "description": "The columns to change; the others keep their values.",
        "properties": {c.name: input_schema(c) for c in inputs},
    })


def input_schema(column: Column) -> dict[str, Any]:
    """The property schema of a column in a create or update model."""
    if not column.write_only:
        return column_schema(column)
    schema: dict[str, Any] = {
        "type": "string", "format": "password", "writeOnly": True,
        "description": "Write-only: given as plain text, stored as a plugin prepares it "
                       "(a password is checked against the password policy and stored "
                       "hashed); never returned, filtered or sorted."}
    if column.nullable:
        schema["nullable"] = True
    return schema


# -- paths ----------------------------------------------------------------------------------


def _list_parameters(table: Table, config: Config) -> list[dict[str, Any]]:
    names = [c.name for c in table.visible_columns]
    params: list[dict[str, Any]] = [
        {"name": "page", "in": "query", "description": "Page number, from 1.",
         "schema": {"type": "integer", "minimum": 1, "default": 1}},
        {"name": "page_size", "in": "query",
         "description": f"Rows per page (at most {config.api.max_page_size}).",
         "schema": {"type": "integer", "minimum": 1, "maximum": config.api.max_page_size,
                    "default": config.api.default_page_size}},
        {"name": "sort", "in": "query", "style": "form", "explode": False,
         "description": "Columns to sort by, comma-separated; a leading `-` sorts descending. "
                        "The default order is the primary key.",
         "schema": {"type": "array", "items": {
             "type": "string", "enum": [*names, *(f"-{n}" for n in names)]}}},
        {"name": "fields", "in": "query", "style": "form", "explode": False,
         "description": "Columns to return, comma-separated (default: all).",
         "schema": {"type": "array", "items": {"type": "string", "enum": names}}},
        count_parameter(config),
        AFTER_PARAMETER,
        {"name": "filter", "in": "query",
         "description": "A JSON filter payload, as the body of `POST /{table}/filter` takes "
                        "(the FilterRequest schema: expressions, sort, fields, distinct, "
                        "aggregations). Its sort and fields win over the query-string ones; "
                        "column=value parameters are ANDed in.",
         "schema": {"type": "string"}},
    ]
    for column in table.visible_columns:
        if column.name in LIST_PARAMETERS or column.kind in ("json", "array"):
            continue
        params.append({"name": column.name, "in": "query",
                       "description": f"Only rows whose {column.name!r} equals this value.",
                       "schema": value_schema(column.kind, column)})
    return params


def _id_parameter(table: Table) -> dict[str, Any]:
    key = table.primary_key
    if len(key) == 1:
        column = table.column(key[0])
        schema = value_schema(column.kind, column) if column is not None else {"type": "string"}
        return {"name": "id", "in": "path", "required": True, "schema": schema,
                "description": f"The primary key ({key[0]})."}
    # A composite key travels as an array in the simple style: the values in key
    # order, each percent-encoded, joined by literal commas; exactly the table
    # API's own encoding, and what Swagger UI sends.
    return {"name": "id", "in": "path", "required": True, "style": "simple", "explode": False,
            "description": f"The composite primary key ({', '.join(key)}): its values in key "
                           "order, comma-separated, each percent-encoded (a comma inside a "
                           "value is %2C), e.g. `17,3`.",
            "schema": {"type": "array", "minItems": len(key), "maxItems": len(key),
                       "items": {"type": "string"}}}


def _table_paths(spec: APISpec, table: Table, model: str, config: Config) -> None:
    tag = table.key
    base = table_path(table)
    collection: dict[str, Any] = {
        "get": {
            "tags": [tag], "operationId": f"list{model}",
            "summary": f"List rows of {table.key}",
            "parameters": _list_parameters(table, config),
            "responses": {200: {"description": "A page of rows.",
                                "content": _json_body(f"{model}Page")},
                          **_errors(400, 401, 403, 422, 503)},
        },
    }
    if writable(table):
        collection["post"] = {
            "tags": [tag], "operationId": f"create{model}",
            "summary": f"Create a row in {table.key}",
            "requestBody": {"required": True, "content": _json_body(f"{model}Create")},
            "responses": {201: {"description": "The created row.", "content": _json_body(model)},
                          **_errors(400, 401, 403, 409, 413, 422, 503)},
        }
    spec.path(path=base, operations=collection)
    spec.path(path=f"{base}/count", operations={"get": {
        "tags": [tag], "operationId": f"countAll{model}",
        "summary": f"Count the rows of {table.key}",
        "responses": {200: {"description": "The number of rows.",
                            "content": _json_body("CountResult")},
                      **_errors(401, 403, 503)},
    }})
    if not table.primary_key:
        return
    by_id: dict[str, Any] = {
        "get": {
            "tags": [tag], "operationId": f"getById{model}",
            "summary": f"Get one row of {table.key} by primary key",
            "parameters": [{"name": "fields", "in": "query", "style": "form", "explode": False,
                            "description": "Columns to return, comma-separated (default: all).",
                            "schema": {"type": "array", "items": {
                                "type": "string",
                                "enum": [c.name for c in table.visible_columns]}}}],
            "responses": {200: {"description": "The row.", "content": _json_body(model)},
                          **_errors(401, 403, 404, 422, 503)},
        },
    }
    if writable(table):
        update = {
            "requestBody": {"required": True, "content": _json_body(f"{model}Update")},
            "responses": {200: {"description": "The updated row.", "content": _json_body(model)},
                          **_errors(400, 401, 403, 404, 409, 413, 422, 503)},
        }
        by_id["put"] = {"tags": [tag], "operationId": f"updateById{model}",
                        "summary": f"Update a row of {table.key}", **update}
        by_id["patch"] = {"tags": [tag], "operationId": f"patchById{model}",
                          "summary": f"Update a row of {table.key} (same as PUT)", **update}
        by_id["delete"] = {
            "tags": [tag], "operationId": f"deleteById{model}",
            "summary": f"Delete a row of {table.key}",
            "responses": {200: {"description": "The deleted row.", "content": _json_body(model)},
                          **_errors(401, 403, 404, 409, 422, 503)},
        }
    spec.path(path=f"{base}/{{id}}", operations=by_id, parameters=[_id_parameter(table)])


# -- the document -----------------------------------------------------------------------------


def _swain_version() -> str:
    try:
        return version("swain")
    except PackageNotFoundError:
        return "0"


def build_document(runtime: Runtime, *, served: bool = True) -> dict[str, Any]:
    """The OpenAPI document for the runtime's loaded schema and enabled plugins.

    ``served`` documents list the relative server ``/`` first (see the module
    docstring); others list only ``api.public_url``.
    """
    # The shared components (core's and every plugin's) are learnt from a pass
    # over no tables at all, so that no table's model can take one of their names.
    empty = Schema(runtime.schema.dialect, runtime.schema.server_version, {})
    shared = _document(runtime, empty, {}, served)["components"].get("schemas", {})
    return _document(runtime, runtime.schema, model_names(runtime.schema, set(shared)), served)


def _document(runtime: Runtime, schema: Schema, names: Mapping[str, str],
              served: bool) -> dict[str, Any]:
    config = runtime.config
    servers = [{"url": "/", "description": "this server"}] if served else []
    if config.api.public_url:
        servers.append({"url": config.api.public_url.rstrip("/") or "/",
                        "description": "public URL"})
    info: dict[str, Any] = {
        "description": (config.project.description or f"The {config.project.name} API.")
        + "\n\nEvery table is also reachable under `/tables/{name}`.",
    }
    spec = APISpec(title=config.project.name, version=_swain_version(),
                   openapi_version=OPENAPI_VERSION, info=info, servers=servers)
    spec.components.schema("Error", error_schema())
    spec.components.schema("ErrorBody", error_body_schema())
    spec.components.schema("ErrorDetail", error_detail_schema())
    spec.components.schema("CountResult", {"type": "object", "required": ["count"],
                                           "properties": {"count": {"type": "integer"}}})
    for _status, name, description in ERROR_RESPONSES:
        spec.components.response(name, {"description": description,
                                        "content": _json_body("Error")})
    for table in sorted(schema.visible_tables, key=lambda t: t.key):
        model = names[table.key]
        kind = table.kind if writable(table) else f"read-only {table.kind}"
        spec.tag({"name": table.key,
                  "description": table.comment or f"{kind.capitalize()} {table.key!r}.",
                  "x-swain-model": model})
        _table_components(spec, table, model, config,
                          runtime.dialect.sequences_follow_explicit_keys)
        _table_paths(spec, table, model, config)
    add_query_paths(spec, schema, config)  # core's /filter, /count, /filter/query
    runtime.pm.hook.swain_spec_contributions(spec=spec, schema=schema, config=config,
                                             runtime=runtime)
    document = name_request_bodies(spec.to_dict())
    declare_body_errors(document)
    explicit_free_form(document)
    return document


def declare_body_errors(document: dict[str, Any]) -> None:
    """Every operation that reads a body may answer 400 (malformed), 408 (too slow) and
    413 (too large), and one that reads JSON 415 (another media type): declared
    here once, for core's operations and every plugin's alike."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict) or "requestBody" not in operation:
                continue
            statuses = [400, 408, 413]
            if "application/json" in operation["requestBody"].get("content", {}):
                statuses.append(415)
            responses = operation.setdefault("responses", {})
            for status in statuses:
                if str(status) not in responses and status not in responses:
                    responses[str(status)] = {
                        "$ref": f"#/components/responses/{_ERROR_NAMES[status]}"}


#: operationId prefix -> the body parameter name generated clients use.
BODY_NAMES = (("updateByFilter", "update_filter_payload"), ("deleteByFilter", "filter_payload"),
              ("filterQuery", "filter_payload"), ("filter", "filter_payload"),
              ("count", "filter_payload"))


def name_request_bodies(document: dict[str, Any]) -> dict[str, Any]:
    """Set ``x-codegen-request-body-name`` on the filter-shaped operations."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict) or "requestBody" not in operation:
                continue
            op_id = operation.get("operationId", "")
            for prefix, name in BODY_NAMES:
                if op_id.startswith(prefix) and not op_id.startswith("countAll"):
                    operation["x-codegen-request-body-name"] = name
                    break
    return document


def explicit_free_form(node: Any) -> None:
    """Give every property-less ``type: object`` an explicit ``additionalProperties: true``, in place.

    The meaning is unchanged (OpenAPI 3.0 objects are open by default), but the
    generators then type the value as a dict of any values instead of warning
    about a map of undefined type; plugins' contributions are covered as well.
    """
    if isinstance(node, dict):
        if node.get("type") == "object" and not {"properties", "additionalProperties", "allOf",
                                                 "anyOf", "oneOf", "$ref"} & node.keys():
            node["additionalProperties"] = True
        for value in node.values():
            explicit_free_form(value)
    elif isinstance(node, list):
        for value in node:
            explicit_free_form(value)


def render(document: dict[str, Any], fmt: str, *, indent: bool = False) -> bytes:
    """The document as JSON or YAML bytes."""
    if fmt == "yaml":
        return yaml.safe_dump(document, sort_keys=False, allow_unicode=True).encode("utf-8")
    return orjson.dumps(document, option=orjson.OPT_INDENT_2) if indent else dumps(document)


def cached_document(runtime: Runtime, fmt: str) -> bytes:
    """The rendered document for the current catalog, built at most once per catalog."""
    catalog = runtime.catalog
    if catalog is None:
        raise ServiceUnavailable("the schema is not loaded yet; the database may be unreachable")
    entry = runtime.documents.get(_CACHE_KEY)
    # Checked by identity as well as cleared on reload: a request that started on
    # the old catalog must not leave its document behind for the new one.
    if entry is None or entry["catalog"] is not catalog:
        entry = {"catalog": catalog, "document": build_document(runtime)}
        runtime.documents[_CACHE_KEY] = entry
    if fmt not in entry:
        entry[fmt] = render(entry["document"], fmt)
    body: bytes = entry[fmt]
    return body


@public
async def openapi_json(request: web.Request) -> web.Response:
    return json_response(cached_document(request.app[RUNTIME], "json"),
                         headers={"Cache-Control": "no-cache"})


@public
async def openapi_yaml(request: web.Request) -> web.Response:
    return web.Response(body=cached_document(request.app[RUNTIME], "yaml"),
                        content_type="application/yaml", charset="utf-8",
                        headers={"Cache-Control": "no-cache"})


@hookimpl
def swain_routes() -> Iterable[web.RouteDef]:
    return [web.get("/openapi.json", openapi_json), web.get("/openapi.yaml", openapi_yaml),
            web.get("/swagger/doc.json", openapi_json)]


# -- command line -------------------------------------------------------------------------------


async def document_from_database(config: Config, pm: Any) -> dict[str, Any]:
    """Introspect the stage's database and build the document (no server)."""
    async with open_runtime(config, pm) as runtime:
        return build_document(runtime, served=False)


@click.command("openapi")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the document here (default: standard output).")
@click.option("--format", "fmt", type=click.Choice(["json", "yaml"]), default=None,
              help="Output format (default: from the file's extension, else json).")
@click.pass_context
def openapi_command(ctx: click.Context, output: Path | None, fmt: str | None) -> None:
    """Introspect the stage's database and write its OpenAPI document."""
    config, pm = ctx.obj.load()
    if fmt is None:
        fmt = "yaml" if output is not None and output.suffix in (".yaml", ".yml") else "json"
    try:
        document = asyncio.run(document_from_database(config, pm))
    except Exception as exc:
        raise click.ClickException(f"cannot build the document: {type(exc).__name__}: "
                                   f"{exc}") from None
    body = render(document, fmt, indent=True)
    if output is None:
        click.echo(body.decode("utf-8").rstrip("\n"))
    else:
        output.write_bytes(body)
        click.echo(f"wrote {output} ({len(document['paths'])} paths)", err=True)


@hookimpl
def swain_cli_commands(cli: click.Group) -> None:
    cli.add_command(openapi_command)
