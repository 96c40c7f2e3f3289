"""The console's JSON API under ``/api/``: everything a page does, for scripts and
swain_cli, described by its own OpenAPI document at ``/api/openapi.json``.

Clients sign in with ``POST /api/login`` and send the token as ``Authorization:
Bearer``; a browser's session cookie works too, with an ``X-CSRF-Token``
header on changes.  Fields are named as on the pages (a setting's path, e.g.
``auth.access_token_expiry``); errors are swain's envelope, with ``details``
naming the fields.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from apispec import APISpec

from swain.core import NotFound, Unauthorized
from swain.core.codec import dumps
from swain.core.schema import Schema, diff

from . import database, documents, forms, projects, steps, suggest
from .context import CONSOLE, SESSION, TOKEN, Console
from .pages import sign_in
from .settings import FieldError
from .store import ConnectionRow, Deployment, Project

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    handler: Handler
    summary: str
    body: str | None = None
    status: int = 200


OPERATIONS: list[Operation] = []


def operation(method: str, path: str, summary: str, body: str | None = None,
              status: int = 200) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        OPERATIONS.append(Operation(method, path, handler, summary, body, status))
        return handler

    return register


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=dumps(data), status=status, content_type="application/json")


def _console(request: web.Request) -> Console:
    return request.app[CONSOLE]


def _id(request: web.Request, name: str) -> int:
    raw = request.match_info[name]
    if not raw.isdigit():
        raise NotFound(f"no {name} {raw!r}")
    return int(raw)


async def _project(request: web.Request) -> Project:
    return await projects.project(_console(request), _id(request, "project"))


async def _connection(request: web.Request, found: Project) -> ConnectionRow:
    return await projects.connection(_console(request), found.id, _id(request, "connection"))


def connection_json(row: ConnectionRow) -> dict[str, Any]:
    return {"id": row.id, "project_id": row.project_id, "stage": row.stage,
            "dialect": row.dialect, "host": row.host, "port": row.port,
            "database": row.database, "username": row.username,
            "has_password": row.has_password, "options": row.options,
            "label": projects.describe(row)}


async def project_json(c: Console, found: Project) -> dict[str, Any]:
    rows = await c.store.connections(found.id)
    return {"id": found.id, "name": found.name, "description": found.description,
            "created_at": found.created_at.isoformat(), "updated_at": found.updated_at.isoformat(),
            "settings": found.settings, "secrets_set": sorted(await projects.secret_names(c, found)),
            "connections": [connection_json(r) for r in rows]}


def deployment_json(found: Deployment, status: Any = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "connection_id": found.connection_id, "host": found.host, "port": found.port,
        "desired": found.desired, "base_url": found.base_url,
        "swagger_url": found.base_url + "/swagger/index.html",
        "started_at": found.started_at.isoformat() if found.started_at else None,
        "last_error": found.last_error}
    if status is not None:
        data.update(running=status.running, health=status.health, ready=status.ready,
                    log=status.log)
    return data


# -- sign in --------------------------------------------------------------------------------------


@operation("POST", "/api/login", "Sign in; returns a bearer token", "Login")
async def login(request: web.Request) -> web.StreamResponse:
    c = _console(request)
    form = forms.from_json(await forms.read_json(request))
    email, password = forms.text(form, "email"), forms.text(form, "password")
    user = await sign_in(c, request, email, password)
    if user is None:
        raise Unauthorized("wrong email or password")
    token = await c.store.create_session(user.id, "api", c.session_ttl)
    return _json({"access_token": token, "token_type": "bearer",
                  "expires_in": int(c.session_ttl), "user": {"id": user.id, "email": user.email}})


@operation("POST", "/api/logout", "End the token's session", status=204)
async def logout(request: web.Request) -> web.StreamResponse:
    token = request.get(TOKEN)
    if token:
        await _console(request).store.end_session(token)
    return web.Response(status=204)


@operation("GET", "/api/me", "The signed-in console user")
async def me(request: web.Request) -> web.StreamResponse:
    session = request[SESSION]
    assert session is not None
    return _json({"id": session.user.id, "email": session.user.email})


# -- projects -------------------------------------------------------------------------------------------


@operation("GET", "/api/projects", "List projects")
async def list_projects(request: web.Request) -> web.StreamResponse:
    c = _console(request)
    return _json({"data": [await project_json(c, p) for p in await c.store.projects()]})


@operation("POST", "/api/projects", "Create a project", "ProjectInput", 201)
async def create_project(request: web.Request) -> web.StreamResponse:
    c = _console(request)
    created = await projects.create_project(c, await forms.read(request))
    return _json(await project_json(c, created), 201)


@operation("GET", "/api/projects/{project}", "A project with its settings and connections")
async def get_project(request: web.Request) -> web.StreamResponse:
    return _json(await project_json(_console(request), await _project(request)))


@operation("PATCH", "/api/projects/{project}", "Rename a project", "ProjectInput")
async def rename_project(request: web.Request) -> web.StreamResponse:
    c = _console(request)
    found = await _project(request)
    form = await forms.read(request)
    if "name" not in form:
        form = {**form, "name": found.name}
    if "description" not in form:
        form = {**form, "description": found.description}
    await projects.rename_project(c, found, form)
    return _json(await project_json(c, await projects.project(c, found.id)))


@operation("DELETE", "/api/projects/{project}",
           "Delete a project (confirm with its name: ?confirm=NAME)", status=204)
async def delete_project(request: web.Request) -> web.StreamResponse:
    found = await _project(request)
    await projects.delete_project(_console(request), found,
                                  {"confirm": request.query.get("confirm", "")})
    return web.Response(status=204)


@operation("GET", "/api/projects/{project}/export", "The project as swain.toml")
async def export_project(request: web.Request) -> web.StreamResponse:
    text, _ = await projects.export(_console(request), await _project(request))
    return web.Response(text=text, content_type="application/toml", charset="utf-8")


@operation("POST", "/api/projects/import", "Create a project from swain.toml text", "Import", 201)
async def import_project(request: web.Request) -> web.StreamResponse:
    c = _console(request)
    form = await forms.read(request)
    created, notes = await projects.import_project(c, forms.text(form, "text"), dict(os.environ))
    return _json({"project": await project_json(c, created), "notes": notes}, 201)


# -- connections ------------------------------------------------------------------------------------------


@operation("GET", "/api/projects/{project}/connections", "The project's connections")
async def list_connections(request: web.Request) -> web.StreamResponse:
    found = await _project(request)
    rows = await _console(request).store.connections(found.id)
    return _json({"data": [connection_json(r) for r in rows]})


@operation("POST", "/api/projects/{project}/connections", "Add a stage's connection",
           "ConnectionInput", 201)
async def create_connection(request: web.Request) -> web.StreamResponse:
    c = _console(request)
    found = await _project(request)
    saved = await projects.save_connection(c, found, None, await forms.read(request))
    return _json(connection_json(await projects.connection(c, found.id, saved)), 201)


@operation("GET", "/api/projects/{project}/connections/{connection}", "One connection")
async def get_connection(request: web.Request) -> web.StreamResponse:
    return _json(connection_json(await _connection(request, await _project(request))))


@operation("PUT", "/api/projects/{project}/connections/{connection}",
           "Change a connection (a blank password keeps the stored one)", "ConnectionInput")
async def update_connection(request: web.Request) -> web.StreamResponse:
    c = _console(request)
    found = await _project(request)
    row = await _connection(request, found)
    await projects.save_connection(c, found, row.id, await forms.read(request))
    return _json(connection_json(await projects.connection(c, found.id, row.id)))


@operation("DELETE", "/api/projects/{project}/connections/{connection}",
           "Remove a connection (its deployment is stopped)", status=204)
async def delete_connection(request: web.Request) -> web.StreamResponse:
    found = await _project(request)
    await projects.delete_connection(_console(request), found,
                                     await _connection(request, found))
    return web.Response(status=204)


@operation("POST", "/api/projects/{project}/connections/{connection}/test",
           "Connect once: the server version, or why it failed")
async def test_connection(request: web.Request) -> web.StreamResponse:
    found = await _project(request)
    result = await database.test_connection(_console(request), found,
                                            await _connection(request, found))
    return _json({"ok": result.ok, "message": result.message, "field": result.field,
                  "version": result.version})


@operation("POST", "/api/projects/{project}/connections/{connection}/sync",
           "Introspect and store a dated snapshot")
async def sync(request: web.Request) -> web.StreamResponse:
    found = await _project(request)
    result = await database.sync(_console(request), found, await _connection(request, found))
    return _json({"snapshot_id": result.snapshot.id,
                  "taken_at": result.snapshot.taken_at.isoformat(),
                  "tables": [t["name"] for t in result.snapshot.schema["tables"]],
                  "changes": result.changes})


@operation("GET", "/api/projects/{project}/connections/{connection}/schema",
           "The newest snapshot and what changed since the one before")
async def schema(request: web.Request) -> web.StreamResponse:
    c = _console(request)
    found = await _project(request)
    row = await _connection(request, found)
    recent = await c.store.snapshots(row.id, 2)
    if not recent:
        raise NotFound(f"connection {row.id} has no snapshot yet; POST …/sync first")
    changes = diff(Schema.from_json(recent[1].schema), Schema.from_json(recent[0].schema)) \
        if len(recent) == 2 else None
    return _json({"taken_at": recent[0].taken_at.isoformat(), "schema": recent[0].schema,
                  "changes": changes})


# -- settings ---------------------------------------------------------------------------------------------


async def _schema_of(c: Console, found: Project) -> Schema | None:
    latest = await database.latest(c, found)
    return Schema.from_json(latest[1].schema) if latest else None


@operation("PUT", "/api/projects/{project}/settings/{card}",
           "Save one settings card: general, tenancy, smtp, social or rbac", "Settings")
async def save_card(request: web.Request) -> web.StreamResponse:
    c = _console(request)
    found = await _project(request)
    form = await forms.read(request)
    card = request.match_info["card"]
    if card == "general":
        await steps.save_general(c, found, form)
    elif card == "tenancy":
        await steps.save_tenancy(c, found, form, await _schema_of(c, found))
    elif card == "smtp":
        await steps.save_smtp(c, found, form)
    elif card == "social":
        await steps.save_social(c, found, form)
    elif card == "rbac":
        await steps.save_rbac_enabled(c, found, form)
    else:
        raise NotFound(f"no settings card {card!r} (general, tenancy, smtp, social, rbac)")
    return _json(await project_json(c, await projects.project(c, found.id)))


@operation("POST", "/api/projects/{project}/smtp/test", "Send a test email", "TestEmail")
async def smtp_test(request: web.Request) -> web.StreamResponse:
    form = await forms.read(request)
    message = await database.send_test_email(_console(request), await _project(request),
                                             forms.text(form, "to"))
    return _json({"message": message})


@operation("GET", "/api/projects/{project}/connections/{connection}/tenancy/plan",
           "The tenancy plan's SQL for this stage and its hash")
async def tenancy_plan(request: web.Request) -> web.StreamResponse:
    found = await _project(request)
    plan = await database.tenancy_plan(_console(request), found,
                                       await _connection(request, found))
    return _json({"sql": plan.sql, "plan": plan.digest, "tables": plan.tables})


@operation("POST", "/api/projects/{project}/connections/{connection}/tenancy/apply",
           "Run the plan shown (confirm, plan hash and backfill required)", "TenancyApply")
async def tenancy_apply(request: web.Request) -> web.StreamResponse:
    found = await _project(request)
    changed = await steps.apply_tenancy(_console(request), found,
                                        await _connection(request, found),
                                        await forms.read(request))
    return _json({"changed_tables": changed})


# -- mapping --------------------------------------------------------------------------------------------


@operation("GET", "/api/projects/{project}/mapping",
           "The nine cards as mapped, and suggestions from the schema")
async def get_mapping(request: web.Request) -> web.StreamResponse:
    c = _console(request)
    found = await _project(request)
    schema = await _schema_of(c, found)
    return _json({"mapping": found.settings.get("mapping") or {},
                  "suggestions": suggest.suggestions(schema) if schema else {}})


@operation("PUT", "/api/projects/{project}/mapping", "Save the cards (checked first)", "Mapping")
async def save_mapping(request: web.Request) -> web.StreamResponse:
    c = _console(request)
    found = await _project(request)
    result = await steps.save_mapping(c, found, await forms.read(request),
                                      await _schema_of(c, found))
    return _json({"mapping": (await projects.project(c, found.id)).settings.get("mapping") or {},
                  "warnings": result.warnings})


@operation("POST", "/api/projects/{project}/mapping/check",
           "Check cards against the schema without saving", "Mapping")
async def check_mapping(request: web.Request) -> web.StreamResponse:
    c = _console(request)
    found = await _project(request)
    cards = steps.mapping_from_form(await forms.read(request))
    result, _ = await steps.check_mapping(c, found, cards, await _schema_of(c, found))
    return _json({"problems": result.problems, "warnings": result.warnings})


@operation("GET", "/api/projects/{project}/mapping/ddl",
           "CREATE TABLE statements for the cards whose tables are missing")
async def mapping_ddl(request: web.Request) -> web.StreamResponse:
    c = _console(request)
    found = await _project(request)
    latest = await database.latest(c, found)
    if latest is None:
        raise FieldError({"mapping": "sync the schema first"}, 409)
    row, snapshot = latest
    missing, ddl = steps.missing_ddl(found, Schema.from_json(snapshot.schema), row.dialect)
    return _json({"cards": missing, "ddl": ddl})


# -- roles and permissions -----------------------------------------------------------------------------


@operation("GET", "/api/projects/{project}/connections/{connection}/rbac",
           "Roles, permissions, grants and users in the stage's own tables")
async def rbac_state(request: web.Request) -> web.StreamResponse:
    c = _console(request)
    found = await _project(request)
    row = await _connection(request, found)

    async def read(store: Any) -> dict[str, Any]:
        return {"roles": [name for name, _ in await store.names("role")],
                "permissions": [name for name, _ in await store.names("permission")],
                "grants": [list(pair) for pair in await store.grants()],
                "users": [{"id": u, "email": e, "roles": r} for u, e, r in await store.users(500)]}

    state = await database.with_rbac(c, found, row, read)
    state["suggestions"] = steps.suggested_permissions(await _schema_of(c, found),
                                                       set(state["permissions"]))
    return _json(state)


@operation("POST", "/api/projects/{project}/connections/{connection}/rbac",
           "create_role, create_permissions, save_matrix, assign, unassign or seed", "RbacAction")
async def rbac_action(request: web.Request) -> web.StreamResponse:
    found = await _project(request)
    message = await steps.rbac_action(_console(request), found,
                                      await _connection(request, found), await forms.read(request))
    return _json({"message": message})


# -- deployments -----------------------------------------------------------------------------------------


@operation("POST", "/api/projects/{project}/connections/{connection}/deploy",
           "Start or replace the stage's API (the previous one serves until the new one is "
           "ready)", "Deploy")
async def deploy(request: web.Request) -> web.StreamResponse:
    c = _console(request)
    found = await _project(request)
    deployed = await steps.deploy(c, found, await _connection(request, found),
                                  await forms.read(request))
    return _json(deployment_json(deployed, await c.deployer.status(deployed)))


@operation("POST", "/api/projects/{project}/connections/{connection}/stop", "Stop the stage's API")
async def stop(request: web.Request) -> web.StreamResponse:
    c = _console(request)
    found = await _project(request)
    stopped = await c.deployer.stop((await _connection(request, found)).id)
    if stopped is None:
        raise NotFound("this stage was never deployed")
    return _json(deployment_json(stopped))


@operation("GET", "/api/projects/{project}/connections/{connection}/deployment",
           "The stage's deployment: address, health and the last log lines")
async def deployment(request: web.Request) -> web.StreamResponse:
    c = _console(request)
    found = await _project(request)
    current = await c.store.deployment((await _connection(request, found)).id)
    if current is None:
        raise NotFound("this stage was never deployed")
    return _json(deployment_json(current, await c.deployer.status(current)))


@operation("GET", "/api/dynamic_swagger",
           "The OpenAPI document of a project's stage (?project=ID&connection=ID)")
async def dynamic_swagger(request: web.Request) -> web.StreamResponse:
    c = _console(request)
    ids = {key: request.query.get(key, "") for key in ("project", "connection")}
    for key, value in ids.items():
        if not value.isdigit():
            raise FieldError({key: f"required: the {key}'s id (a number)"}, 400)
    found = await projects.project(c, int(ids["project"]))
    row = await projects.connection(c, found.id, int(ids["connection"]))
    current = await c.store.deployment(row.id)
    base = current.base_url if current is not None and current.desired == "running" else None
    return _json(await documents.document(c, found, row, base))


# -- the API's own document ---------------------------------------------------------------------------------


BODIES: dict[str, dict[str, Any]] = {
    "Login": {"email": "string", "password": "string"},
    "ProjectInput": {"name": "string", "description": "string"},
    "Import": {"text": "string"},
    "ConnectionInput": {"stage": "string", "dialect": "string", "url": "string",
                        "host": "string", "port": "integer", "database": "string",
                        "username": "string", "password": "string", "schemas": "string"},
    "Settings": {},
    "TestEmail": {"to": "string"},
    "TenancyApply": {"plan": "string", "backfill": "string", "confirm": "boolean"},
    "Mapping": {},
    "RbacAction": {"action": "string"},
    "Deploy": {"host": "string", "port": "integer"},
}


def openapi(public_url: str) -> dict[str, Any]:
    spec = APISpec(title="swain console API", version="1", openapi_version="3.0.3",
                   info={"description": __doc__ or ""}, servers=[{"url": public_url or "/"}])
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    error = {"type": "object", "properties": {"error": {"type": "object", "properties": {
        "code": {"type": "string"}, "message": {"type": "string"},
        "details": {"type": "array", "items": {"type": "object", "properties": {
            "path": {"type": "string"}, "message": {"type": "string"}}}}}}}}
    spec.components.schema("Error", error)
    for name, fields in BODIES.items():
        spec.components.schema(name, {"type": "object", "additionalProperties": True,
                                      "properties": {k: {"type": v} for k, v in fields.items()}})
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        item: dict[str, Any] = {
            "summary": op.summary, "operationId": op.handler.__name__,
            "responses": {str(op.status): {"description": op.summary},
                          "default": {"description": "An error", "content": {
                              "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}
        if op.path != "/api/login":
            item["security"] = [{"bearer": []}]
        params = [part[1:-1] for part in op.path.split("/") if part.startswith("{")]
        if params:
            item["parameters"] = [{"name": p, "in": "path", "required": True,
                                   "schema": {"type": "string"}} for p in params]
        if op.path == "/api/dynamic_swagger":
            item["parameters"] = [{"name": p, "in": "query", "required": True,
                                   "schema": {"type": "integer"}} for p in ("project", "connection")]
        if op.body:
            item["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": {"$ref": f"#/components/schemas/{op.body}"}}}}
        paths.setdefault(op.path, {})[op.method.lower()] = item
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()


async def openapi_json(request: web.Request) -> web.StreamResponse:
    return _json(openapi(_console(request).public_url))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/openapi.json", openapi_json)
    for op in OPERATIONS:
        app.router.add_route(op.method, op.path, op.handler)


__all__ = ["OPERATIONS", "add_routes"]
