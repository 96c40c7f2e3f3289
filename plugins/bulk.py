"""Bulk and mass operations.

* ``POST /{t}/bulk`` inserts an array of rows (at most ``bulk.max_rows``) in one
  transaction.  Rows go in as multi-row INSERTs first; only when a batch fails
  is it replayed row by row, each under its own savepoint, to find the bad
  rows.  Good rows are written and bad ones reported (200 when all succeed,
  207 otherwise); ``?atomic=true`` writes nothing unless every row is good
  (then the status is the first failure's, with the same body).
  ``?on_conflict=update|ignore`` (with ``conflict_columns``, default the
  primary key) upserts with the database's own statement
  (:meth:`Dialect.upsert`), row by row.  A row ``ignore`` skipped is reported
  in ``succeeded`` with ``"ignored": true`` and the stored row; one that
  clashes with a row the caller cannot see fails as a plain insert of it would
  (see :meth:`TableGateway.upsert`).
* ``PUT /{t}/bulk`` updates rows by the primary key each element carries.
* ``PUT /{t}/filter`` (``updateData``) and ``DELETE /{t}/filter`` change every
  row a filter matches; an empty filter needs ``"all": true``;
  ``?dry_run=true`` only counts; ``?max_affected=N`` rolls back when more rows
  would change.

All of it goes through the table gateway (its statements, authorizers, row
policies, write preparers and audit events are the same as for single-row
operations); this module is the HTTP side and the per-row results.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from aiohttp import web

from swain.core import (
    IDENTITY,
    RUNTIME,
    Action,
    ApiError,
    Config,
    DBConnection,
    JsonRow,
    MethodNotAllowed,
    Setting,
    Table,
    TableGateway,
    filter_predicate,
    hookimpl,
    invalid,
    json_response,
    parse_payload,
    read_json,
    resolve_table,
    table_routes,
)
from swain.core.catalog import RESERVED_NAMES
from swain.core.codec import dumps, parse_value
from swain.core.references import unreachable

#: bound parameters per multi-row INSERT; below every backend's limit
_PARAMS_PER_STATEMENT = 10_000


class _Rollback(Exception):
    """Leaves the transaction (rolling it back) with the response to send."""

    def __init__(self, response: web.Response) -> None:
        super().__init__("rollback")
        self.response = response


def _gateway(request: web.Request) -> TableGateway:
    return TableGateway(request.app[RUNTIME], request.get(IDENTITY))


def _flag(request: web.Request, name: str) -> bool:
    text = request.query.get(name, "false").lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no", ""):
        return False
    raise invalid(name, "expected true or false")


def _error(exc: ApiError) -> dict[str, Any]:
    return dict(exc.body()["error"])


def _classified(gw: TableGateway, exc: BaseException) -> ApiError | None:
    if isinstance(exc, ApiError):
        return exc
    return gw.dialect.classify_error(exc)


def _key_of(table: Table, row: Mapping[str, Any]) -> Any:
    if not table.primary_key:
        return None
    values = [row.get(name) for name in table.primary_key]
    return values[0] if len(values) == 1 else values


class BulkResult:
    def __init__(self, table: Table) -> None:
        self.table = table
        self.succeeded: list[dict[str, Any]] = []
        self.failed: list[dict[str, Any]] = []
        self.first_error: ApiError | None = None

    def ok(self, index: int, row: dict[str, Any], *, ignored: bool = False) -> None:
        item = {"index": index, "id": _key_of(self.table, row), "data": row}
        if ignored:
            item["ignored"] = True
        self.succeeded.append(item)

    def fail(self, index: int, exc: ApiError) -> None:
        self.first_error = self.first_error or exc
        self.failed.append({"index": index, "error": _error(exc)})

    def response(self, *, atomic: bool) -> web.Response:
        self.succeeded.sort(key=lambda item: item["index"])
        self.failed.sort(key=lambda item: item["index"])
        if atomic and self.failed:
            status = self.first_error.status if self.first_error else 422
            return json_response(dumps({"succeeded": [], "failed": self.failed}), status=status)
        status = 207 if self.failed else 200
        if not any(isinstance(item["data"], JsonRow) for item in self.succeeded):
            return json_response(dumps({"succeeded": self.succeeded, "failed": self.failed}),
                                 status=status)
        succeeded = b",".join(map(_item, self.succeeded))
        return json_response(b'{"succeeded":[' + succeeded + b'],"failed":'
                             + dumps(self.failed) + b"}", status=status)


def _item(item: dict[str, Any]) -> bytes:
    """One success as JSON; a row the database wrote as JSON goes in as it is."""
    row = item["data"]
    if not isinstance(row, JsonRow):
        return dumps(item)
    head = dumps({name: value for name, value in item.items() if name != "data"})
    return head[:-1] + b',"data":' + row.json + b"}"


def _rows(body: Any, limit: int) -> list[Any]:
    if not isinstance(body, list):
        raise invalid("body", "expected a JSON array of row objects")
    if len(body) > limit:
        raise invalid("body", f"at most {limit} rows per request (bulk.max_rows), got {len(body)}")
    return body


def _writable(table: Table, allowed: str) -> None:
    """A read-only table or view has no bulk or mass writes: 405, naming what its path
    still takes (``allowed``, for the ``Allow`` header)."""
    if not table.writable or (table.kind == "table" and not table.primary_key):
        raise MethodNotAllowed(f"{table.key!r} is read-only", headers={"Allow": allowed})


# -- POST /{t}/bulk ---------------------------------------------------------------


async def bulk_create(request: web.Request) -> web.Response:
    _, table = resolve_table(request)
    _writable(table, "")
    gw = _gateway(request)
    atomic = _flag(request, "atomic")
    on_conflict = request.query.get("on_conflict")
    if on_conflict not in (None, "update", "ignore"):
        raise invalid("on_conflict", "expected update or ignore")
    if on_conflict and not gw.dialect.supports_upsert:
        raise invalid("on_conflict", f"the {gw.dialect.name} database has no upsert")
    conflict = _conflict_columns(table, request.query.get("conflict_columns"), on_conflict)
    rows = _rows(await read_json(request), request.app[RUNTIME].config.bulk.max_rows)
    await gw.authorize(table, "create")
    update_scope = await gw.scope(table, "update") if on_conflict == "update" else []
    result = BulkResult(table)
    checked: list[tuple[int, dict[str, Any]]] = []
    for index, row in enumerate(rows):
        try:
            values = gw.check_values(table, row, creating=True, path=f"[{index}]")
            for name in conflict:
                if on_conflict and name not in values:
                    raise invalid(f"[{index}].{name}", "required to detect a conflict")
            checked.append((index, values))
        except ApiError as exc:
            result.fail(index, exc)

    async def write(conn: DBConnection) -> None:
        if on_conflict:
            for index, values in checked:
                await _savepointed(gw, conn, result, index, lambda v=values: gw.upsert(
                    table, v, conflict, on_conflict, update_scope, conn))
        else:
            await _insert_batched(gw, conn, table, checked, result)

    return await _written(gw, result, atomic, write)


async def _written(gw: TableGateway, result: BulkResult, atomic: bool,
                   write: Callable[[DBConnection], Awaitable[None]]) -> web.Response:
    """Run ``write`` in one transaction and answer with the per-row result; an atomic
    batch with a failing row (found before or while writing) writes nothing."""
    if atomic and result.failed:
        return result.response(atomic=True)
    try:
        async with gw.dialect.transaction() as conn:
            await write(conn)
            if atomic and result.failed:
                raise _Rollback(result.response(atomic=True))
    except _Rollback as rollback:
        gw.discard_audit()
        return rollback.response
    except BaseException:
        gw.discard_audit()
        raise
    await gw.flush_audit()
    return result.response(atomic=atomic)


async def _savepointed(gw: TableGateway, conn: DBConnection, result: BulkResult, index: int,
                       work: Any) -> None:
    """Run one row's work under a savepoint; a failure is reported, not raised.

    ``work`` returns the row, or ``(row, ignored)`` for an upsert."""
    await conn.savepoint("swain_row")
    try:
        outcome = await work()
    except Exception as exc:
        classified = _classified(gw, exc)
        if classified is None:
            raise
        await conn.rollback_to_savepoint("swain_row")
        result.fail(index, classified)
        return
    await conn.release_savepoint("swain_row")
    row, ignored = outcome if isinstance(outcome, tuple) else (outcome, False)
    result.ok(index, row, ignored=ignored)


async def _insert_batched(gw: TableGateway, conn: DBConnection, table: Table,
                          checked: Sequence[tuple[int, dict[str, Any]]],
                          result: BulkResult) -> None:
    """Multi-row INSERTs of rows with the same columns; a failing batch is replayed
    row by row to tell the good rows from the bad."""
    prepared: dict[tuple[str, ...], list[tuple[int, dict[str, Any], dict[str, Any]]]] = {}
    for index, values in checked:
        try:
            ready = await gw.prepare_write(table, dict(values), "create")
        except ApiError as exc:
            result.fail(index, exc)
            continue
        prepared.setdefault(tuple(ready), []).append((index, values, ready))
    for names, group in prepared.items():
        size = max(1, _PARAMS_PER_STATEMENT // max(1, len(names)))
        for start in range(0, len(group), size):
            chunk = group[start:start + size]
            refused = await unreachable(gw, table, [ready for _, _, ready in chunk], conn)
            for position, error in refused.items():
                result.fail(chunk[position][0], error)
            chunk = [item for position, item in enumerate(chunk) if position not in refused]
            if not chunk:
                continue
            if gw.inserts_many(table, names):
                await conn.savepoint("swain_batch")
                try:
                    rows = await gw.insert_many(table, names, [r for _, _, r in chunk], conn)
                except Exception as exc:
                    if _classified(gw, exc) is None:
                        raise
                    await conn.rollback_to_savepoint("swain_batch")
                else:
                    await conn.release_savepoint("swain_batch")
                    for (index, _, _), row in zip(chunk, rows, strict=True):
                        result.ok(index, row)
                    continue
            for index, values, _ in chunk:
                await _savepointed(gw, conn, result, index,
                                   lambda v=values: gw.insert(table, dict(v), conn))


def _conflict_columns(table: Table, text: str | None, on_conflict: str | None) -> tuple[str, ...]:
    if not on_conflict:
        if text:
            raise invalid("conflict_columns", "only with on_conflict=update or ignore")
        return ()
    names = tuple(n.strip() for n in (text or "").split(",") if n.strip()) or \
        tuple(table.primary_key)
    for name in names:
        column = table.column(name)
        if column is None or column.secret:
            raise invalid("conflict_columns", f"unknown column {name!r}")
    keys = [tuple(table.primary_key)] + [tuple(u["columns"]) for u in table.unique_constraints]
    if not names or not any(set(names) == set(k) and k for k in keys):
        choices = "; ".join(",".join(k) for k in keys if k) or "none"
        raise invalid("conflict_columns", f"must be the primary key or a unique constraint "
                      f"(choices: {choices})")
    return names


# -- PUT /{t}/bulk -------------------------------------------------------------------


async def bulk_update(request: web.Request) -> web.Response:
    _, table = resolve_table(request)
    _writable(table, "")
    gw = _gateway(request)
    atomic = _flag(request, "atomic")
    rows = _rows(await read_json(request), request.app[RUNTIME].config.bulk.max_rows)
    await gw.authorize(table, "update")
    result = BulkResult(table)
    checked: list[tuple[int, list[Any], dict[str, Any]]] = []
    for index, row in enumerate(rows):
        try:
            if not isinstance(row, Mapping):
                raise invalid(f"[{index}]", "expected a JSON object of column values")
            key = []
            for name in table.primary_key:
                if name not in row:
                    raise invalid(f"[{index}].{name}", "required: each element carries its "
                                  "primary key")
                column = table.column(name)
                assert column is not None
                key.append(parse_value(column, row[name], f"[{index}].{name}"))
            values = gw.check_values(table, {k: v for k, v in row.items()
                                             if k not in table.primary_key},
                                     creating=False, path=f"[{index}]")
            if not values:
                raise invalid(f"[{index}]", "give at least one column to change")
            checked.append((index, key, values))
        except ApiError as exc:
            result.fail(index, exc)

    async def write(conn: DBConnection) -> None:
        for index, key, values in checked:
            await _savepointed(gw, conn, result, index,
                               lambda k=key, v=values: gw.update(table, k, v, conn))

    return await _written(gw, result, atomic, write)


# -- PUT / DELETE /{t}/filter --------------------------------------------------------


def _max_affected(request: web.Request) -> int | None:
    text = request.query.get("max_affected")
    if text is None or text == "":
        return None
    try:
        value = int(text)
    except ValueError:
        raise invalid("max_affected", "expected a non-negative integer") from None
    if value < 0:
        raise invalid("max_affected", "expected a non-negative integer")
    return value


async def _mass(request: web.Request, action: Action) -> web.Response:
    _, table = resolve_table(request)
    _writable(table, "POST")  # the filter itself
    gw = _gateway(request)
    dry_run = _flag(request, "dry_run")
    limit = _max_affected(request)
    extra = ("all", "updateData") if action == "update" else ("all",)
    body = await read_json(request)
    req = parse_payload(request, gw, table, body, extra_keys=extra)
    if req.sort or req.fields or req.distinct or req.aggregations is not None or req.relations:
        raise invalid("body", "a mass operation takes only expressions"
                      + (", updateData" if action == "update" else "") + " and all")
    everything = req.extra.get("all", False)
    if not isinstance(everything, bool):
        raise invalid("all", "expected true or false")
    if req.empty and not everything:
        raise invalid("expressions", "an empty filter matches every row; send \"all\": true "
                      "to mean it")
    filters = await filter_predicate(gw, req)
    values: dict[str, Any] = {}
    if action == "update":
        if "updateData" not in req.extra:
            raise invalid("updateData", "required: the columns to set")
        values = gw.check_values(table, req.extra["updateData"], creating=False,
                                 path="updateData")
        if not values:
            raise invalid("updateData", "give at least one column to change")
    word = "updated" if action == "update" else "deleted"
    if dry_run:
        count = await gw.count_where(table, action, filters)
        return json_response(dumps({word: count, "dry_run": True}))
    detail = {"expressions": body.get("expressions", []), "all": everything}
    if action == "update":
        affected = await gw.update_where(table, filters, values, max_affected=limit,
                                         detail=detail)
    else:
        affected = await gw.delete_where(table, filters, max_affected=limit, detail=detail)
    return json_response(dumps({word: affected}))


async def update_by_filter(request: web.Request) -> web.Response:
    return await _mass(request, "update")


async def delete_by_filter(request: web.Request) -> web.Response:
    return await _mass(request, "delete")


# -- OpenAPI ----------------------------------------------------------------------------


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _errors(*names: str) -> dict[str, Any]:
    codes = {"BadRequest": "400", "Unauthorized": "401", "Forbidden": "403",
             "Conflict": "409", "PayloadTooLarge": "413", "ValidationError": "422",
             "ServiceUnavailable": "503"}
    return {codes[n]: {"$ref": f"#/components/responses/{n}"} for n in names}


_FLAG = {"type": "boolean", "default": False}


def _document(spec: Any, schema: Any, config: Config) -> None:
    # Every nested object is a named component, so generated clients get stable
    # class names instead of inline ones (BulkCreateResult_failed_inner).
    spec.components.schema("BulkSuccess", {
        "type": "object", "required": ["index", "data"], "properties": {
            "index": {"type": "integer", "description": "The row's position in the request."},
            "id": {"description": "The primary key: a value, or an array for a composite key.",
                   "nullable": True},
            "data": {"type": "object", "additionalProperties": True,
                     "description": "The row as stored."},
            "ignored": {"type": "boolean", "description":
                        "Only with on_conflict=ignore, and only when true: the row "
                        "already existed and was left as it is; `data` is the stored "
                        "row. A key held by a row the caller cannot see is a failure "
                        "(409), as for a plain insert."}}})
    spec.components.schema("BulkFailure", {
        "type": "object", "required": ["index", "error"], "properties": {
            "index": {"type": "integer", "description": "The row's position in the request."},
            "error": _ref("ErrorBody")}})
    spec.components.schema("BulkCreateResult", {
        "type": "object", "required": ["succeeded", "failed"],
        "properties": {"succeeded": {"type": "array", "items": _ref("BulkSuccess")},
                       "failed": {"type": "array", "items": _ref("BulkFailure")}}})
    spec.components.schema("BulkErrorResult", {
        "description": "An error, or the per-row result of an atomic batch with failing rows.",
        "anyOf": [_ref("Error"), _ref("BulkCreateResult")]})
    result = {"application/json": {"schema": _ref("BulkCreateResult")}}
    atomic = {"name": "atomic", "in": "query", "schema": _FLAG,
              "description": "All rows or none."}
    counted = {"type": "object", "properties": {"dry_run": {"type": "boolean"}}}
    mass_params = [{"name": "dry_run", "in": "query", "schema": _FLAG,
                    "description": "Only count the rows that would change."},
                   {"name": "max_affected", "in": "query",
                    "schema": {"type": "integer", "minimum": 0},
                    "description": "Roll back (409) when more rows would change."}]
    # Named components, so generated clients get stable class names.
    spec.components.schema("FilterWhere", {"type": "object", "properties": {
        "expressions": {"type": "array", "items": _ref("FilterExpression")},
        "all": {"type": "boolean", "description": "Needed to match every row."}}})
    spec.components.schema("UpdateByFilterResult", {"allOf": [counted, {
        "type": "object", "properties": {"updated": {"type": "integer"}}}]})
    spec.components.schema("DeleteByFilterResult", {"allOf": [counted, {
        "type": "object", "properties": {"deleted": {"type": "integer"}}}]})
    for tag in spec.to_dict().get("tags", []):
        table = schema.table(tag["name"])
        model = tag.get("x-swain-model")
        if table is None or not model or not table.writable or not table.primary_key:
            continue
        base = ("/tables/" if table.key.lower() in RESERVED_NAMES else "/") + \
            quote(table.key, safe="")
        # An atomic batch with a failing row answers with the first failure's status
        # and the per-row result: any status a row can fail with has both shapes.
        either = {"application/json": {"schema": _ref("BulkErrorResult")}}
        responses = {"200": {"description": "Every row succeeded.", "content": result},
                     "207": {"description": "Some rows failed; see `failed`.",
                             "content": result},
                     **_errors("BadRequest", "PayloadTooLarge"),
                     **{status: {"description": f"{what}, or (atomic) a row failed so: the "
                                                "per-row result, nothing written.",
                                 "content": either}
                        for status, what in (("401", "Authentication required"),
                                             ("403", "Forbidden"),
                                             ("404", "A row to update does not exist"),
                                             ("409", "A constraint was violated"),
                                             ("422", "Invalid input"),
                                             ("503", "The database is unavailable"))}}
        spec.path(path=f"{base}/bulk", operations={
            "post": {"tags": [table.key], "operationId": f"bulkCreate{model}",
                     "summary": f"Insert many rows into {table.key}",
                     "parameters": [atomic,
                                    {"name": "on_conflict", "in": "query", "schema": {
                                        "type": "string", "enum": ["update", "ignore"]}},
                                    {"name": "conflict_columns", "in": "query",
                                     "style": "form", "explode": False,
                                     "schema": {"type": "array", "items": {"type": "string"}}}],
                     "requestBody": {"required": True, "content": {"application/json": {
                         "schema": {"type": "array", "items": _ref(f"{model}Create")}}}},
                     "responses": responses},
            "put": {"tags": [table.key], "operationId": f"bulkUpdate{model}",
                    "summary": f"Update many rows of {table.key} by primary key",
                    "parameters": [atomic],
                    "requestBody": {"required": True, "content": {"application/json": {
                        "schema": {"type": "array", "items": _ref(f"{model}Update")}}}},
                    "responses": responses}})
        filter_body = _ref("FilterWhere")
        spec.components.schema(f"{model}UpdateByFilter", {
            "allOf": [filter_body, {"type": "object", "required": ["updateData"],
                                    "properties": {"updateData": _ref(f"{model}Update")}}]})
        update_body = _ref(f"{model}UpdateByFilter")
        errors = _errors("BadRequest", "Unauthorized", "Forbidden", "Conflict",
                         "ValidationError", "ServiceUnavailable")
        spec.path(path=f"{base}/filter", operations={
            "put": {"tags": [table.key], "operationId": f"updateByFilter{model}",
                    "summary": f"Update every row of {table.key} a filter matches",
                    "parameters": mass_params,
                    "requestBody": {"required": True, "content": {"application/json": {
                        "schema": update_body}}},
                    "responses": {"200": {"description": "How many rows changed.", "content": {
                        "application/json": {"schema": _ref("UpdateByFilterResult")}}},
                                  **errors}},
            "delete": {"tags": [table.key], "operationId": f"deleteByFilter{model}",
                       "summary": f"Delete every row of {table.key} a filter matches",
                       "parameters": mass_params,
                       "requestBody": {"required": True, "content": {"application/json": {
                           "schema": filter_body}}},
                       "responses": {"200": {"description": "How many rows were deleted.",
                                             "content": {"application/json": {
                                                 "schema": _ref("DeleteByFilterResult")}}},
                                     **errors}}})


# -- hooks ------------------------------------------------------------------------------


@hookimpl
def swain_spec_contributions(spec: Any, schema: Any, config: Config) -> None:
    _document(spec, schema, config)


@hookimpl
def swain_config_sections() -> Mapping[str, Mapping[str, Setting]]:
    return {"bulk": {"max_rows": Setting("int", 10_000, minimum=1,
                                         doc="rows in one bulk request")}}


@hookimpl
def swain_routes(config: Config) -> Iterable[web.RouteDef]:
    return [*table_routes("POST", "/bulk", bulk_create),
            *table_routes("PUT", "/bulk", bulk_update),
            *table_routes("PUT", "/filter", update_by_filter),
            *table_routes("DELETE", "/filter", delete_by_filter)]

