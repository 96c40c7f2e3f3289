"""OpenAPI for the query API core serves on every table: ``POST /{t}/filter``,
``POST /{t}/count`` and, on the stages of ``api.sql_preview``,
``POST /{t}/filter/query``; and the filter payload as named components, so
generated clients get stable class names.
"""

from __future__ import annotations

from typing import Any

from .components import ref as _ref
from .components import table_path


def count_parameter(config: Any) -> dict[str, Any]:
    """``count``: how a list's ``total`` is computed."""
    return {"name": "count", "in": "query",
            "description": "How `total` is computed: `bounded` (the default) counts exactly up "
                           f"to {config.api.exact_count_limit} rows and gives the planner's "
                           "estimate beyond (then `total_is_estimate` is true); `exact` counts "
                           "every matching row; `estimated` asks the planner; `none` counts "
                           "nothing (`total` and `total_pages` are null).",
            "schema": {"type": "string", "enum": ["bounded", "exact", "estimated", "none"],
                       "default": "bounded"}}


AFTER_PARAMETER: dict[str, Any] = {
    "name": "after", "in": "query",
    "description": "Keyset paging: the `next_after` of the previous page, for the rows after "
                   "its last one in the same order (sort, then the primary key); empty for the "
                   "first page. The answer then carries `next_after`. Not with `page` above 1; "
                   "needs a primary key and non-nullable sort columns.",
    "schema": {"type": "string"}}

#: the list envelope's members besides ``data``
ENVELOPE_PROPERTIES: dict[str, Any] = {
    "total": {"type": "integer", "nullable": True,
              "description": "Matching rows; null with count=none."},
    "page": {"type": "integer", "minimum": 1},
    "page_size": {"type": "integer", "minimum": 1},
    "total_pages": {"type": "integer", "nullable": True},
    "total_is_estimate": {"type": "boolean", "nullable": True,
                          "description": "Whether `total` is the planner's estimate rather "
                                         "than a count; null with count=none."},
    "next_after": {"type": "string", "nullable": True,
                   "description": "With `after`: the cursor for the next page, null on the "
                                  "last one."},
}


def _errors(*names: str) -> dict[str, Any]:
    statuses = {"BadRequest": "400", "Unauthorized": "401", "Forbidden": "403",
                "NotFound": "404", "Conflict": "409", "PayloadTooLarge": "413",
                "ValidationError": "422", "ServiceUnavailable": "503"}
    return {statuses[n]: {"$ref": f"#/components/responses/{n}"} for n in names}


_OPERATORS_DOC = ("eq, ne, gt, gte, lt, lte, in, nin, between, like, ilike, contains, "
                  "icontains, startswith, istartswith, endswith, iendswith, isnull")


def filter_schemas() -> dict[str, dict[str, Any]]:
    """The filter payload as OpenAPI component schemas.

    Shaped for generated clients: an expression is one object whose optional
    members cover the three forms (a ``oneOf`` makes the Python generator turn a
    plain dict into an empty wrapper), and the members that take one of a few
    words (``operator``, ``direction``, ``scope``) are plain strings, so that an
    untyped TypeScript object literal (``direction: "desc"``) still type-checks.
    The server checks the words (422 naming the path and what is allowed).
    """
    sort = {"type": "array", "items": _ref("FilterSort")}
    expressions = {"type": "array", "items": _ref("FilterExpression")}
    return {
        "FilterSort": {
            "type": "object", "required": ["field"], "properties": {
                "field": {"type": "string"},
                "direction": {"type": "string", "example": "desc",
                              "description": "`asc` (the default) or `desc`."},
                "nulls": {"type": "string", "example": "last",
                          "description": "`first` or `last`."}}},
        "AggregationFunction": {
            "type": "object", "required": ["type"], "properties": {
                "type": {"type": "string", "example": "SUM",
                         "description": "COUNT, COUNT_DISTINCT, SUM, AVG, MIN or MAX."},
                "field": {"type": "string"}, "alias": {"type": "string"}}},
        "FilterExpression": {
            "type": "object",
            "description": "One expression, in one of three forms told apart by their "
                           "members (a member of another form is refused):\n\n"
                           "* a condition `{field, operator, value}`: `field <operator> "
                           f"value`. Operators: {_OPERATORS_DOC}; `in`/`nin` take an array, "
                           "`between` two values, `isnull` true/false. A NULL matches no "
                           "comparison.\n"
                           "* a group `{operator, expressions}`: AND / OR of its "
                           "expressions, or NOT of their AND.\n"
                           "* a relationship `{relationship, scope, include, expressions, "
                           "fields, sort, aggregations}`: expressions over related rows. "
                           "`filterParent` (the default) keeps parents with a matching "
                           "related row; `filterRelated` only filters what is included; "
                           "`include` embeds the related rows (an object for many-to-one, "
                           "an array for one-to-many).",
            "properties": {
                "field": {"type": "string", "description": "Condition: the column."},
                "operator": {"type": "string", "example": "eq",
                             "description": f"Condition: one of {_OPERATORS_DOC}. Group: "
                                            "AND, OR or NOT."},
                "value": {"nullable": True, "description": "Condition: the value compared "
                                                           "with."},
                "expressions": {**expressions, "description": "Group: its expressions (at "
                                "least one). Relationship: expressions over the related "
                                "rows."},
                "relationship": {"type": "string", "description": "Relationship: its name "
                                 "(the related table, or the key column)."},
                "scope": {"type": "string", "example": "filterParent",
                          "description": "Relationship: `filterParent` (the default) or "
                                         "`filterRelated`."},
                "include": {"type": "boolean", "description": "Relationship: embed the "
                            "related rows under the relationship's name (default false)."},
                "fields": {"type": "array", "items": {"type": "string"},
                           "description": "Relationship: the related columns to embed."},
                "sort": {**sort, "description": "Relationship: the order of embedded rows."},
                "aggregations": _ref("FilterAggregations")}},
        "FilterAggregations": {
            "type": "object", "required": ["functions"],
            "properties": {
                "functions": {"type": "array", "minItems": 1, "items": _ref("AggregationFunction")},
                "group_by": {"type": "array", "items": {"type": "string"}},
                "having": expressions,
                "sort": sort}},
        "FilterRequest": {
            "type": "object",
            "properties": {
                "expressions": expressions,
                "sort": sort,
                "fields": {"type": "array", "items": {"type": "string"}},
                "distinct": {"type": "boolean", "default": False},
                "aggregations": _ref("FilterAggregations")}},
    }


def add_query_paths(spec: Any, schema: Any, config: Any) -> None:
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
            count_parameter(config), AFTER_PARAMETER]
    body = {"required": True, "content": {"application/json": {"schema": _ref("FilterRequest")}}}
    for tag in spec.to_dict().get("tags", []):
        table = schema.table(tag["name"])
        model = tag.get("x-swain-model")
        if table is None or not model:
            continue
        base = table_path(table)
        spec.components.schema(f"{model}FilterResponse", {
            "type": "object", "required": ["data", "total", "page", "page_size", "total_pages"],
            "properties": {
                "data": {"type": "array", "items": _ref(model), "description":
                         "The rows; included relationships and `aggregations` are added "
                         "under their names. With top-level aggregations, grouped rows."},
                **ENVELOPE_PROPERTIES}})
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
