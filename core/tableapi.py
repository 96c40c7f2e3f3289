"""The table API: HTTP in, gateway calls, JSON out (the routes are in :mod:`.routes`).

The shared request helpers (resolving the table, reading JSON, paging) live
here; the query endpoints (:mod:`.queryapi`) build on them.

Composite keys are addressed by their values in key order, separated by
commas, each value percent-encoded (so a literal comma is ``%2C`` and a slash
``%2F``): ``/order_items/17,3``, ``/pairs/a%2Cb%2Fc,1`` for ``("a,b/c", 1)``.

Paging: ``page`` counts from 1; ``page_size`` defaults to
``api.default_page_size`` and a larger request than ``api.max_page_size`` is
clamped to it (the envelope reports the size used); anything that is not a
positive integer is a 422.  ``after=`` pages by keyset instead (:mod:`.keyset`).
``count`` is ``bounded`` unless asked otherwise: exact up to
``api.exact_count_limit`` rows, the planner's estimate beyond, which the
envelope's ``total_is_estimate`` tells.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from . import codec
from .catalog import RESERVED_NAMES, Catalog
from .errors import (
    BadRequest,
    ClientClosedRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RequestTimeout,
    ServiceUnavailable,
    UnsupportedMediaType,
    ValidationFailed,
    invalid,
)
from .gateway import ListQuery, Page, PageResult, TableGateway, equality_filters
from .keys import FIXED_PATHS, IDENTITY, RUNTIME, STATIC_PATHS
from .keyset import Keyset, after_predicate, decode_cursor, encode_cursor, keyset_for, refused
from .protocols import Predicate
from .schema import Table

LIST_PARAMETERS = frozenset({"page", "page_size", "sort", "fields", "count", "filter", "after"})
COUNT_MODES = ("bounded", "exact", "estimated", "none")
JSON = "application/json"


def json_response(body: bytes, status: int = 200,
                  headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=body, status=status, content_type=JSON, headers=headers)


def gateway(request: web.Request) -> TableGateway:
    runtime = request.app[RUNTIME]
    return TableGateway(runtime, request.get(IDENTITY))


def resolve_table(request: web.Request) -> tuple[Catalog, Table]:
    """The table a request addresses; reserved names only under ``/tables/``."""
    app = request.app
    catalog = app[RUNTIME].catalog
    if catalog is None:
        raise ServiceUnavailable("the schema is not loaded yet; the database may be unreachable")
    # a path the API owns (``/health``, ``/auth/login``) reached with another method
    # lands here, in the table routes; it is a 405, not a table called "auth"
    _refuse_method(app[STATIC_PATHS].get(request.path), request)
    name = request.match_info["table"]
    table = catalog.table(name)
    if table is None:
        raise NotFound(f"no table {name!r}")
    if name.lower() in RESERVED_NAMES and not _under_tables(request):
        raise NotFound(f"table {name!r} collides with a reserved path; use /tables/{name}")
    return catalog, table


def _under_tables(request: web.Request) -> bool:
    """Whether the ``/tables/{table}…`` route matched.  Not the path: ``DELETE
    /tables/1`` matches ``/{table}/{id}`` and must not reach a table named "tables"."""
    resource = request.match_info.route.resource
    return resource is not None and resource.canonical.startswith("/tables/{table}")


def is_json(content_type: str) -> bool:
    """``application/json`` or a ``+json`` type (``application/merge-patch+json``)."""
    return content_type == JSON or (content_type.startswith("application/")
                                    and content_type.endswith("+json"))


async def read_body(request: web.Request) -> bytes:
    """The whole request body, within ``server.body_timeout`` (else 408) and
    ``api.max_body_size`` (else 413); a client that leaves mid-body gets a 499
    (which nobody receives, and which is no server error)."""
    config = request.app[RUNTIME].config
    try:
        async with asyncio.timeout(config.server.body_timeout):
            return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge(f"request body exceeds {config.api.max_body_size} bytes") from None
    except TimeoutError:
        raise RequestTimeout(f"the request body did not arrive within "
                             f"{config.server.body_timeout:g}s") from None
    except ConnectionError:
        raise ClientClosedRequest("the client closed the connection while sending its "
                                  "request") from None


async def read_json(request: web.Request) -> Any:
    """The request body as strict JSON (``Content-Type: application/json`` or ``+json``,
    else 415: other types are what browsers send cross-origin without asking)."""
    if not request.can_read_body:
        raise BadRequest("a JSON request body is required")
    if not is_json(request.content_type):
        raise UnsupportedMediaType(f"expected a JSON body (Content-Type: {JSON}), got "
                                   f"{request.content_type!r}")
    return codec.loads(await read_body(request))


def _not_a_key(request: web.Request) -> None:
    """``PUT /{t}/count`` and the like: a fixed path of the table with another method is
    a 405 naming the methods it has, not a row addressed by the key ``count``."""
    _refuse_method(request.app[FIXED_PATHS].get(request.match_info.get("id", "")), request)


def _refuse_method(allowed: frozenset[str] | None, request: web.Request) -> None:
    if allowed:
        raise MethodNotAllowed(f"{request.method} is not allowed here (allowed: "
                               f"{', '.join(sorted(allowed))})",
                               headers={"Allow": ", ".join(sorted(allowed))})


def parse_key(table: Table, request: web.Request) -> list[Any]:
    _not_a_key(request)
    if not table.primary_key:
        raise NotFound(f"table {table.key!r} has no primary key, so rows have no address")
    # The raw segment, not match_info: match_info is already decoded, and a
    # decoded %2C could no longer be told from the separator.
    raw_segment = request.rel_url.raw_path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    parts = [unquote(p) for p in raw_segment.split(",")]
    if len(parts) == 1 and len(table.primary_key) > 1:
        # Generated clients percent-encode the whole path value, separator
        # included; with no raw comma at all, %2C can only be the separator.
        parts = parts[0].split(",")
    if len(parts) != len(table.primary_key):
        names = ", ".join(table.primary_key)
        raise invalid("id", f"expected {len(table.primary_key)} comma-separated key values "
                      f"({names}), got {len(parts)}")
    values = []
    for name, text in zip(table.primary_key, parts, strict=True):
        column = table.column(name)
        assert column is not None
        values.append(codec.parse_value(column, text, name, from_text=True))
    return values


def _fields(table: Table, text: str | None) -> tuple[str, ...]:
    if not text:
        return ()
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    for name in names:
        column = table.column(name)
        if column is None or column.secret:
            allowed = ", ".join(c.name for c in table.visible_columns)
            raise invalid(f"fields.{name}", f"unknown column (allowed: {allowed})")
    return names


def _sort(table: Table, text: str | None) -> tuple[tuple[str, bool, str | None], ...]:
    if not text:
        return ()
    terms = []
    for term in (t.strip() for t in text.split(",")):
        if not term:
            continue
        descending = term.startswith("-")
        name = term.lstrip("+-")
        column = table.column(name)
        if column is None or column.secret:
            allowed = ", ".join(c.name for c in table.visible_columns)
            raise invalid(f"sort.{name}", f"unknown column (allowed: {allowed})")
        terms.append((name, descending, None))
    return tuple(terms)


def _positive(request: web.Request, name: str, default: int) -> int:
    text = request.query.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise invalid(name, "expected a positive integer") from None
    if value < 1:
        raise invalid(name, "expected a positive integer")
    return value


def page_from(request: web.Request) -> Page:
    default, maximum = request.app[RUNTIME].page_sizes
    size = min(_positive(request, "page_size", default), maximum)
    number = _positive(request, "page", 1)
    if number > 10_000_000:
        raise invalid("page", "too large")
    return Page(number, size)


def count_mode(request: web.Request) -> str:
    mode = request.query.get("count") or "bounded"
    if mode not in COUNT_MODES:
        raise invalid("count", "expected bounded, exact, estimated or none")
    return mode


@dataclass(frozen=True)
class KeysetRequest:
    """``after=`` of a list request: the order walked and the rows-after predicate
    (``None`` on the first keyset page, ``after=`` with no value)."""

    keyset: Keyset
    after: Predicate | None


def keyset_from(request: web.Request, gw: TableGateway, table: Table,
                sort: Sequence[tuple[str, bool, str | None]], page: Page) -> KeysetRequest | None:
    """The keyset a request pages by, or ``None`` without ``after=``."""
    text = request.query.get("after")
    if text is None:
        return None
    if page.number > 1:
        raise refused("does not combine with page; a keyset page follows the cursor, "
                      "leave page out")
    keyset = keyset_for(table, sort)
    if not text:
        return KeysetRequest(keyset, None)
    values = decode_cursor(keyset, table, text, gw.dialect.encode)
    return KeysetRequest(keyset, after_predicate(keyset, gw.catalog, table, values,
                                                 gw.dialect.comparable))


def envelope(result_body: bytes, total: int | None, page: Page, estimated: bool = False,
             keyset: Keyset | None = None, last: dict[str, Any] | None = None) -> bytes:
    """The list envelope; ``total_is_estimate`` is null when nothing was counted, and
    ``next_after`` is there in keyset mode only."""
    pages = None if total is None else (math.ceil(total / page.size) if total else 0)
    meta: dict[str, Any] = {"total": total, "page": page.number, "page_size": page.size,
                            "total_pages": pages,
                            "total_is_estimate": None if total is None else estimated}
    if keyset is not None:
        meta["next_after"] = None if last is None else encode_cursor(keyset, last)
    return b'{"data":' + result_body + b"," + codec.dumps(meta)[1:]


def page_envelope(result: PageResult, page: Page, keyset: KeysetRequest | None) -> bytes:
    return envelope(result.body, result.total, page, result.estimated,
                    None if keyset is None else keyset.keyset, result.last)


def query_filters(request: web.Request, catalog: Catalog, table: Table, gw: TableGateway,
                  parameters: frozenset[str]) -> list[Predicate]:
    """``?column=value`` equality filters; any other name than ``parameters`` is a 422."""
    pairs = []
    for name, value in request.query.items():
        if name in parameters:
            continue
        column = table.column(name)
        if column is None or column.secret:
            allowed = ", ".join(sorted(parameters | {c.name for c in table.visible_columns}))
            raise invalid(name, f"unknown query parameter (allowed: {allowed})")
        pairs.append((name, codec.parse_value(column, value, name, from_text=True)))
    eq = equality_filters(table, catalog, pairs, gw.dialect.encode)
    return [] if eq is None else [eq]


async def list_rows(request: web.Request) -> web.Response:
    """``GET /{t}``: a page of rows (``?filter=`` is the query API's, see :mod:`.routes`)."""
    catalog, table = resolve_table(request)
    gw = gateway(request)
    filters = query_filters(request, catalog, table, gw, LIST_PARAMETERS)
    page = page_from(request)
    sort = _sort(table, request.query.get("sort"))
    keyset = keyset_from(request, gw, table, sort, page)
    query = ListQuery(fields=_fields(table, request.query.get("fields")), sort=sort,
                      filters=filters, page=page, count=count_mode(request),
                      keyset=None if keyset is None else keyset.keyset.names,
                      after=None if keyset is None else keyset.after)
    result = await gw.list(table, query)
    return json_response(page_envelope(result, page, keyset))


async def count_rows(request: web.Request) -> web.Response:
    catalog, table = resolve_table(request)
    gw = gateway(request)
    count = await gw.count(table, query_filters(request, catalog, table, gw, frozenset()))
    return json_response(codec.dumps({"count": count}))


async def get_row(request: web.Request) -> web.Response:
    _, table = resolve_table(request)
    key = parse_key(table, request)
    body = await gateway(request).get_json(table, key, _fields(table, request.query.get("fields")))
    return json_response(body)


def _require_creatable(table: Table, request: web.Request) -> None:
    _not_a_key(request)
    read_only = {"Allow": "GET, HEAD"}
    if table.kind == "table" and not table.primary_key:
        raise MethodNotAllowed(f"{table.key!r} has no primary key and is read-only", headers=read_only)
    if not table.updatable:
        raise MethodNotAllowed(f"{table.key!r} is a read-only view", headers=read_only)


async def create_row(request: web.Request) -> web.Response:
    _, table = resolve_table(request)
    _require_creatable(table, request)
    gw = gateway(request)
    values = gw.check_values(table, await read_json(request), creating=True)
    row = await gw.insert(table, values)
    return json_response(codec.dumps(row), status=201)


async def update_row(request: web.Request) -> web.Response:
    _, table = resolve_table(request)
    _require_creatable(table, request)
    key = parse_key(table, request)
    gw = gateway(request)
    body = await read_json(request)
    values = gw.check_values(table, body, creating=False)
    if not values:
        raise ValidationFailed("body: give at least one column to change")
    row = await gw.update(table, key, values)
    return json_response(codec.dumps(row))


async def delete_row(request: web.Request) -> web.Response:
    _, table = resolve_table(request)
    _require_creatable(table, request)
    key = parse_key(table, request)
    row = await gateway(request).delete(table, key)
    return json_response(codec.dumps(row))
