"""The query endpoints: ``POST /{t}/filter``, ``POST /{t}/count``,
``POST /{t}/filter/query`` (the SQL preview) and ``GET /{t}?filter=``.

A payload is parsed into a typed tree (:mod:`swain.core.filters`), compiled
into one predicate and handed to the table gateway, which ANDs in the row
policies; related rows and per-parent aggregations are composed by the database
in the page's statement (:mod:`swain.core.composed`) or embedded level by level
(:mod:`swain.core.relations`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import orjson
from aiohttp import web

from . import codec
from .composed import compose
from .errors import BadRequest, NotFound, invalid
from .filters import (
    AggregationSpec,
    FilterCompiler,
    FilterRequest,
    Limits,
    Outputs,
    RelationFilter,
    aggregate_expression,
    parse,
    parse_aggregations,
)
from .gateway import AggregateQuery, ListQuery, Page, PageResult, TableGateway
from .keys import RUNTIME
from .keyset import refused
from .protocols import Predicate
from .relations import (
    Embedder,
    decoded,
    hidden_columns,
    needed_columns,
    prepare_relations,
    result_value,
)
from .schema import Table
from .tableapi import (
    LIST_PARAMETERS,
    count_mode,
    envelope,
    gateway,
    json_response,
    keyset_from,
    page_from,
    query_filters,
    read_json,
    resolve_table,
)


def limits(request: web.Request) -> Limits:
    runtime = request.app[RUNTIME]
    return Limits.from_config(runtime.config, runtime.dialect.max_parameters)


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
    sort = tuple((t.field, t.descending, t.nulls) for t in req.sort)
    keyset = keyset_from(request, gw, table, sort, page)
    if keyset is not None and (req.aggregations is not None or req.distinct):
        raise refused("keyset pages walk rows by their key; they do not combine with "
                      "aggregations or distinct")
    estimated, last = False, None
    if req.aggregations is not None:
        spec = parse_aggregations(table, req.aggregations, "aggregations",
                                  gw.runtime.aggregate_functions, limits(request),
                                  parameters=req.parameters)
        if req.fields or req.distinct or req.relations or req.sort:
            raise invalid("aggregations", "grouped results take their order from "
                          "aggregations.sort; fields, sort, distinct and relationship includes "
                          "do not combine with aggregations")
        filters = [*extra, *await filter_predicate(gw, req)]
        body, total, estimated = await grouped(gw, table, spec, filters, page, mode)
    else:
        relations = prepare_relations(req.relations, gw.runtime.aggregate_functions,
                                      limits(request))
        filters = [*extra, *await filter_predicate(gw, req)]
        if req.distinct and req.fields:
            for i, term in enumerate(req.sort):
                if term.field not in req.fields:
                    raise invalid(f"sort[{i}].field", "with distinct, sort only on selected fields")
        query = ListQuery(fields=req.fields, sort=sort, filters=filters, page=page, count=mode,
                          distinct=req.distinct,
                          keyset=None if keyset is None else keyset.keyset.names,
                          after=None if keyset is None else keyset.after)
        result = await rows_with_relations(gw, table, query, relations)
        body, total, estimated, last = result.body, result.total, result.estimated, result.last
    out = envelope(body, total, page, estimated, None if keyset is None else keyset.keyset, last)
    if preview:
        sql = gw.statements[0][0] if gw.statements else ""
        statements = [{"sql": s, "params": {k: _jsonable(v) for k, v in p.items()}}
                      for s, p in gw.statements]
        extra_body = codec.dumps({"sql": sql, "params": statements[0]["params"] if statements
                                  else {}, "statements": statements})
        out = out[:-1] + b"," + extra_body[1:]
    return json_response(out)


async def rows_with_relations(gw: TableGateway, table: Table, query: ListQuery,
                              relations: Sequence[RelationFilter]) -> PageResult:
    """A page of rows with their included relationships and per-parent aggregations:
    composed by the database in the page's own statement where the dialect can
    (:mod:`swain.core.composed`), else embedded with a statement per relationship
    and level (:class:`~swain.core.relations.Embedder`); the same answer either way."""
    members = await compose(gw, table, relations)
    if members is not None:
        result = await gw.list(table, dataclasses.replace(query, members=members))
        if result.whole:
            return result
    embedder = Embedder(gw)
    await embedder.authorize(relations)
    hidden: list[str] = []
    if relations and query.fields:
        hidden = hidden_columns(query.fields, needed_columns(table, relations), relations)
    fields = tuple(dict.fromkeys([*query.fields, *needed_columns(table, relations)])) \
        if query.fields else ()
    result = await gw.list(table, dataclasses.replace(query, fields=fields))
    if not relations:
        return result
    rows: list[dict[str, Any]] = orjson.loads(result.body)
    await embedder.embed(rows, relations)
    for row in rows:
        for name in hidden:
            row.pop(name, None)
    result.body = codec.dumps(rows)
    return result


async def grouped(gw: TableGateway, table: Table, spec: AggregationSpec,
                  filters: list[Predicate], page: Page,
                  mode: str) -> tuple[bytes, int | None, bool]:
    """Top-level aggregations: one row per group, HAVING on aliases, ordered and paged."""
    sa_table = gw.catalog.sa_table(table)
    expressions = {a.alias: aggregate_expression(a, sa_table) for a in spec.functions}
    having = None
    if spec.having is not None and spec.having.children:
        compiler = FilterCompiler(gw, prefix="_h", typed_params=True)
        outputs = {**{name: sa_table.c[name] for name in spec.group_by}, **expressions}
        clause, key = compiler.group(spec.having, Outputs(outputs))  # type: ignore[arg-type]
        having = (clause, key, compiler.params)
    rows, total, estimated = await gw.aggregate(table, AggregateQuery(
        group_by=spec.group_by, aggregates=expressions,
        shape=tuple((a.alias, a.function, a.column.name if a.column else None)
                    for a in spec.functions),
        filters=filters, having=having,
        sort=tuple((t.field, t.descending, t.nulls) for t in spec.sort), page=page, count=mode))
    group_columns = [table.column(name) for name in spec.group_by]
    data = []
    for row in rows:
        item: dict[str, Any] = {}
        for column, value in zip(group_columns, row, strict=False):
            assert column is not None
            item[column.name] = decoded(gw, column, value)
        for aggregate, value in zip(spec.functions, row[len(group_columns):], strict=True):
            item[aggregate.alias] = result_value(gw, aggregate.result_kind, aggregate.column,
                                                 value)
        data.append(item)
    return codec.dumps(data), total, estimated


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
