"""The query endpoints of SPEC §5/§6: ``POST /{t}/filter``, ``POST /{t}/count``,
``POST /{t}/filter/query`` (the SQL preview) and ``GET /{t}?filter=``.

A payload is parsed into a typed tree (:mod:`swain.core.filters`), compiled
into one predicate and handed to the table gateway, which ANDs in the row
policies; related rows and aggregations come from :mod:`swain.core.relations`.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any
from urllib.parse import quote

import orjson
import sqlalchemy as sa
from aiohttp import web

from . import codec
from .catalog import RESERVED_NAMES, Compiled
from .errors import BadRequest, NotFound, invalid
from .filters import (
    AggregationSpec,
    FilterCompiler,
    FilterRequest,
    Limits,
    Outputs,
    aggregate_expression,
    parse,
    parse_aggregations,
)
from .gateway import ListQuery, Page, TableGateway
from .keys import RUNTIME
from .protocols import Predicate
from .relations import Embedder, needed_columns, result_value
from .schema import Table
from .tableapi import (
    LIST_PARAMETERS,
    count_mode,
    envelope,
    gateway,
    json_response,
    page_from,
    query_filters,
    read_json,
    resolve_table,
)


def limits(request: web.Request) -> Limits:
    return Limits.from_config(request.app[RUNTIME].config)


def parse_payload(request: web.Request, gw: TableGateway, table: Table, payload: Any,
                  extra_keys: Sequence[str] = ()) -> FilterRequest:
    """The payload as a typed tree for ``table`` (422 naming the path otherwise)."""
    return parse(table, payload, gw.catalog.schema.tables, limits(request),
                 extra_keys=extra_keys, operators=gw.runtime.filter_operators)


async def filter_predicate(gw: TableGateway, req: FilterRequest) -> list[Predicate]:
    predicate = await FilterCompiler(gw).predicate(req.table, req.where)
    return [] if predicate is None else [predicate]


def _jsonable(value: Any) -> Any:
    try:
        codec.dumps(value)
        return value
    except TypeError:
        inner = getattr(value, "obj", None)  # driver wrappers such as psycopg's Jsonb
        return inner if inner is not None else str(value)


async def run_filter(request: web.Request, gw: TableGateway, table: Table, req: FilterRequest,
                     extra: Sequence[Predicate] = (), preview: bool = False) -> web.Response:
    """Run a parsed filter for one page and answer with the list envelope."""
    page = page_from(request)
    mode = count_mode(request)
    if req.aggregations is not None:
        spec = parse_aggregations(table, req.aggregations, "aggregations",
                                  gw.runtime.aggregate_functions, limits(request))
        if req.fields or req.distinct or req.relations or req.sort:
            raise invalid("aggregations", "grouped results take their order from "
                          "aggregations.sort; fields, sort, distinct and relationship includes "
                          "do not combine with aggregations")
        filters = [*extra, *await filter_predicate(gw, req)]
        body, total = await grouped(gw, table, spec, filters, page, mode)
    else:
        filters = [*extra, *await filter_predicate(gw, req)]
        fields = req.fields
        hidden: list[str] = []
        if req.relations and fields:
            hidden = [n for n in needed_columns(table, req.relations) if n not in fields]
            fields = (*fields, *hidden)
        if req.distinct and req.fields:
            for i, term in enumerate(req.sort):
                if term.field not in req.fields:
                    raise invalid(f"sort[{i}].field", "with distinct, sort only on selected fields")
        if req.distinct and req.relations:
            raise invalid("distinct", "distinct does not combine with relationship includes")
        result = await gw.list(table, ListQuery(
            fields=fields, sort=tuple((t.field, t.descending, t.nulls) for t in req.sort),
            filters=filters, page=page, count=mode, distinct=req.distinct))
        body, total = result.body, result.total
        if req.relations:
            rows: list[dict[str, Any]] = orjson.loads(body)
            await Embedder(gw, limits(request)).embed(table, rows, req.relations)
            for row in rows:
                for name in hidden:
                    row.pop(name, None)
            body = codec.dumps(rows)
    out = envelope(body, total, page)
    if preview:
        sql = gw.statements[0][0] if gw.statements else ""
        statements = [{"sql": s, "params": {k: _jsonable(v) for k, v in p.items()}}
                      for s, p in gw.statements]
        extra_body = codec.dumps({"sql": sql, "params": statements[0]["params"] if statements
                                  else {}, "statements": statements})
        out = out[:-1] + b"," + extra_body[1:]
    return json_response(out)


async def grouped(gw: TableGateway, table: Table, spec: AggregationSpec,
                  filters: list[Predicate], page: Page, mode: str) -> tuple[bytes, int | None]:
    """Top-level aggregations: one row per group, HAVING on aliases, ordered and paged."""
    predicates = await gw.scope(table, "read") + filters
    sa_table = gw.catalog.sa_table(table)
    compiler = FilterCompiler(gw, prefix="_h", typed_params=True)
    expressions = {a.alias: aggregate_expression(a, sa_table) for a in spec.functions}
    outputs = {**{name: sa_table.c[name] for name in spec.group_by}, **expressions}
    having: Any = None
    having_key: Hashable = None
    if spec.having is not None and spec.having.children:
        having, having_key = compiler.group(spec.having, Outputs(outputs))  # type: ignore[arg-type]
    shape = ("aggregate", table.key, spec.group_by,
             tuple((a.alias, a.function, a.column.name if a.column else None)
                   for a in spec.functions),
             having_key, spec.sort, tuple(p.key for p in predicates), mode)

    def build() -> Compiled:
        group = [sa_table.c[name] for name in spec.group_by]
        labels = [expr.label(alias) for alias, expr in expressions.items()]
        stmt = sa.select(*group, *labels).where(*[p.clause for p in predicates])
        if group:
            stmt = stmt.group_by(*group)
        if having is not None:
            stmt = stmt.having(having)
        count_sql = None
        if mode != "none":
            count_sql = gw.dialect.compile(sa.select(sa.func.count()).select_from(
                stmt.subquery()))[0]
        order: list[Any] = []
        used = set()
        for term in spec.sort:
            order.extend(gw.dialect.order_by(outputs[term.field], term.descending, term.nulls))
            used.add(term.field)
        order.extend(sa_table.c[name].asc() for name in spec.group_by if name not in used)
        stmt = stmt.order_by(*order).limit(sa.bindparam("_limit", type_=sa.Integer)).offset(
            sa.bindparam("_offset", type_=sa.Integer))
        sql, names = gw.dialect.compile(stmt)
        return Compiled(sql, names, extra=count_sql)

    compiled = gw.catalog.compiled(shape, build)
    params: dict[str, Any] = {}
    for p in predicates:
        params.update(p.params)
    params.update(compiler.params)
    count_params = dict(params)
    params["_limit"] = page.size
    params["_offset"] = (page.number - 1) * page.size
    gw.statements.append((compiled.sql, params))
    async with gw.dialect.acquire() as conn:
        rows = await conn.fetch_all(compiled.sql, params)
        total = None
        if compiled.extra is not None:
            row = await conn.fetch_one(compiled.extra, count_params)
            total = int(row[0]) if row else 0
    group_columns = [table.column(name) for name in spec.group_by]
    data = []
    for row in rows:
        item: dict[str, Any] = {}
        for column, value in zip(group_columns, row, strict=False):
            assert column is not None
            decode = gw.dialect.decoder(column)
            item[column.name] = decode(value) if decode is not None and value is not None \
                else value
        for aggregate, value in zip(spec.functions, row[len(group_columns):], strict=True):
            item[aggregate.alias] = result_value(gw, aggregate.result_kind, aggregate.column,
                                                 value)
        data.append(item)
    return codec.dumps(data), total


# -- handlers ---------------------------------------------------------------------


async def filter_rows(request: web.Request) -> web.Response:
    """``POST /{t}/filter``: the filter grammar, paged like ``GET /{t}``."""
    _, table = resolve_table(request)
    gw = gateway(request)
    req = parse_payload(request, gw, table, await read_json(request))
    return await run_filter(request, gw, table, req)


async def filter_query(request: web.Request) -> web.Response:
    """``POST /{t}/filter/query``: like ``/filter``, plus the SQL that ran and its
    parameters; only on the stages listed in ``api.sql_preview``."""
    config = request.app[RUNTIME].config
    if config.stage not in config.api.sql_preview:
        raise NotFound("the SQL preview is not enabled on this stage")
    _, table = resolve_table(request)
    gw = gateway(request)
    req = parse_payload(request, gw, table, await read_json(request))
    return await run_filter(request, gw, table, req, preview=True)


async def count_filtered(request: web.Request) -> web.Response:
    """``POST /{t}/count``: ``{"count": N}`` for an optional filter body."""
    _, table = resolve_table(request)
    gw = gateway(request)
    payload: Any = {}
    if request.can_read_body:
        raw = await read_json(request)
        payload = {} if raw is None else raw
    req = parse_payload(request, gw, table, payload)
    count = await gw.count(table, await filter_predicate(gw, req))
    return json_response(codec.dumps({"count": count}))


async def list_with_filter(request: web.Request) -> web.Response:
    """``GET /{t}?filter=<JSON payload>``: the payload's ``sort`` and ``fields`` win over
    the query-string ones; ``?column=value`` pairs are ANDed in."""
    catalog, table = resolve_table(request)
    gw = gateway(request)
    try:
        payload = codec.loads(request.query["filter"])
    except BadRequest as exc:
        raise invalid("filter", f"not a JSON filter payload ({exc.message})") from None
    if isinstance(payload, dict):
        payload = dict(payload)
        for name in ("sort", "fields"):
            text = request.query.get(name)
            if text and name not in payload:
                payload[name] = _from_query(name, text)
    req = parse_payload(request, gw, table, payload)
    extra = query_filters(request, catalog, table, gw, LIST_PARAMETERS)
    return await run_filter(request, gw, table, req, extra)


def _from_query(name: str, text: str) -> list[Any]:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if name == "fields":
        return parts
    return [{"field": p.lstrip("+-"), "direction": "desc" if p.startswith("-") else "asc"}
            for p in parts]


# -- OpenAPI ------------------------------------------------------------------------


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _errors(*names: str) -> dict[str, Any]:
    statuses = {"BadRequest": "400", "Unauthorized": "401", "Forbidden": "403",
                "NotFound": "404", "Conflict": "409", "PayloadTooLarge": "413",
                "ValidationError": "422", "ServiceUnavailable": "503"}
    return {statuses[n]: {"$ref": f"#/components/responses/{n}"} for n in names}


_OPERATORS_DOC = ("eq, ne, gt, gte, lt, lte, in, nin, between, like, ilike, contains, "
                  "icontains, startswith, istartswith, endswith, iendswith, isnull")


def filter_schemas() -> dict[str, dict[str, Any]]:
    """The filter payload (SPEC §6) as OpenAPI component schemas."""
    sort = {"type": "array", "items": _ref("FilterSort")}
    return {
        "FilterSort": {
            "type": "object", "required": ["field"], "properties": {
                "field": {"type": "string"},
                "direction": {"type": "string", "enum": ["asc", "desc"], "default": "asc"},
                "nulls": {"type": "string", "enum": ["first", "last"]}}},
        "AggregationFunction": {
            "type": "object", "required": ["type"], "properties": {
                "type": {"type": "string", "example": "SUM"},
                "field": {"type": "string"}, "alias": {"type": "string"}}},
        "FilterCondition": {
            "type": "object", "required": ["field", "operator", "value"],
            "description": f"`field <operator> value`. Operators: {_OPERATORS_DOC}; `in`/`nin` "
                           "take an array, `between` two values, `isnull` true/false. A NULL "
                           "matches no comparison.",
            "properties": {"field": {"type": "string"}, "operator": {"type": "string"},
                           "value": {}}},
        "FilterGroup": {
            "type": "object", "required": ["operator", "expressions"],
            "description": "AND / OR of its expressions, or NOT of their AND.",
            "properties": {"operator": {"type": "string", "enum": ["AND", "OR", "NOT"]},
                           "expressions": {"type": "array", "minItems": 1,
                                           "items": _ref("FilterExpression")}}},
        "FilterRelationship": {
            "type": "object", "required": ["relationship"],
            "description": "Expressions over related rows. `filterParent` keeps parents with "
                           "a matching related row; `filterRelated` only filters what is "
                           "included; `include` embeds the related rows (an object for "
                           "many-to-one, an array for one-to-many).",
            "properties": {
                "relationship": {"type": "string"},
                "scope": {"type": "string", "enum": ["filterParent", "filterRelated"],
                          "default": "filterParent"},
                "include": {"type": "boolean", "default": False},
                "expressions": {"type": "array", "items": _ref("FilterExpression")},
                "fields": {"type": "array", "items": {"type": "string"}},
                "sort": sort,
                "aggregations": _ref("FilterAggregations")}},
        "FilterExpression": {"oneOf": [_ref("FilterCondition"), _ref("FilterGroup"),
                                       _ref("FilterRelationship")]},
        "FilterAggregations": {
            "type": "object", "required": ["functions"],
            "properties": {
                "functions": {"type": "array", "minItems": 1, "items": _ref("AggregationFunction")},
                "group_by": {"type": "array", "items": {"type": "string"}},
                "having": {"type": "array", "items": _ref("FilterExpression")},
                "sort": sort}},
        "FilterRequest": {
            "type": "object",
            "properties": {
                "expressions": {"type": "array", "items": _ref("FilterExpression")},
                "sort": sort,
                "fields": {"type": "array", "items": {"type": "string"}},
                "distinct": {"type": "boolean", "default": False},
                "aggregations": _ref("FilterAggregations")}},
    }


def spec_contributions(spec: Any, schema: Any, config: Any) -> None:
    """Document ``/filter``, ``POST /count`` and ``/filter/query`` for every table.

    Model names are read from the tags the document builder wrote
    (``x-swain-model``), so they agree with the rest of the document.
    """
    for name, body in filter_schemas().items():
        spec.components.schema(name, body)
    preview = config.stage in config.api.sql_preview
    if preview:
        spec.components.schema("SqlPreview", {
            "type": "object", "required": ["sql", "params"], "properties": {
                "sql": {"type": "string", "description": "The statement that ran."},
                "params": {"type": "object", "additionalProperties": True,
                           "description": "Its bound parameters by name."}}})
    page = [{"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
            {"name": "page_size", "in": "query", "schema": {"type": "integer", "minimum": 1}},
            {"name": "count", "in": "query",
             "schema": {"type": "string", "enum": ["exact", "estimated", "none"]}}]
    body = {"required": True, "content": {"application/json": {"schema": _ref("FilterRequest")}}}
    for tag in spec.to_dict().get("tags", []):
        table = schema.table(tag["name"])
        model = tag.get("x-swain-model")
        if table is None or not model:
            continue
        base = "/" + quote(table.key, safe="")
        if table.key.lower() in RESERVED_NAMES:
            base = "/tables" + base
        spec.components.schema(f"{model}FilterResponse", {
            "type": "object", "required": ["data", "total", "page", "page_size", "total_pages"],
            "properties": {
                "data": {"type": "array", "items": {"allOf": [_ref(model)], "description":
                         "A row; included relationships and `aggregations` are added under "
                         "their names. With top-level aggregations, a grouped row."}},
                "total": {"type": "integer", "nullable": True},
                "page": {"type": "integer"}, "page_size": {"type": "integer"},
                "total_pages": {"type": "integer", "nullable": True}}})
        result = {"description": "A page of matching rows.",
                  "content": {"application/json": {"schema": _ref(f"{model}FilterResponse")}}}
        spec.path(path=f"{base}/filter", operations={"post": {
            "tags": [table.key], "operationId": f"filter{model}",
            "summary": f"Filter rows of {table.key}", "parameters": page, "requestBody": body,
            "responses": {"200": result, **_errors("BadRequest", "Unauthorized", "Forbidden",
                                                   "ValidationError", "ServiceUnavailable")}}})
        spec.path(path=f"{base}/count", operations={"post": {
            "tags": [table.key], "operationId": f"count{model}",
            "summary": f"Count rows of {table.key} matching a filter",
            "requestBody": {"required": False, "content": body["content"]},
            "responses": {"200": {"description": "The number of matching rows.",
                                  "content": {"application/json": {"schema":
                                                                   _ref("CountResult")}}},
                          **_errors("BadRequest", "Unauthorized", "Forbidden",
                                    "ValidationError", "ServiceUnavailable")}}})
        if preview:
            spec.components.schema(f"{model}FilterQueryResponse", {"allOf": [
                _ref(f"{model}FilterResponse"), _ref("SqlPreview")]})
            spec.path(path=f"{base}/filter/query", operations={"post": {
                "tags": [table.key], "operationId": f"filterQuery{model}",
                "summary": f"Filter rows of {table.key} and show the SQL that ran",
                "parameters": page, "requestBody": body,
                "responses": {"200": {"description": "The page, plus `sql` and its `params`.",
                                      "content": {"application/json": {"schema": _ref(
                                          f"{model}FilterQueryResponse")}}},
                              **_errors("BadRequest", "Unauthorized", "Forbidden", "NotFound",
                                        "ValidationError", "ServiceUnavailable")}}})
