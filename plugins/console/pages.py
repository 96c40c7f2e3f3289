"""The console's pages: server-rendered forms over the same operations as the
JSON API.  A form with a mistake is shown again with what was entered and the
mistake next to its field (status 422); a successful change redirects back
with a message."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from typing import Any
from urllib.parse import quote

from aiohttp import web

from swain.core import ApiError, RateLimited
from swain.plugins.mapping import CARDS

from . import database, deploy, diagram, documents, forms, projects, security, steps, suggest
from .context import CONSOLE, PRE, SESSION, TOKEN, Console
from .overview import STEPS, Overview, load
from .settings import DIALECTS, STAGES, FieldError
from .web import redirect, render, restore_secrets, stashed

log = logging.getLogger("swain.console")
routes = web.RouteTableDef()


def _console(request: web.Request) -> Console:
    return request.app[CONSOLE]


async def _form(request: web.Request) -> dict[str, Any]:
    return restore_secrets(request, await forms.read(request))


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/projects"


def _project_page(request: web.Request, view: Overview, template: str, step: str, *,
                  status: int = 200, errors: dict[str, str] | None = None,
                  values: dict[str, Any] | None = None, **context: Any) -> web.Response:
    restored = stashed(request)
    if restored is not None and values is None:
        values = restored
        context["restored"] = True
    return render(request, template, status=status, errors=errors, values=values, view=view,
                  steps=STEPS, step=step, stages=STAGES, dialects=DIALECTS, **context)


def _connection_of(view: Overview, request: web.Request) -> Any:
    raw = request.match_info.get("connection", "")
    for row in view.connections:
        if raw.isdigit() and row.id == int(raw):
            return row
    raise web.HTTPNotFound()


# -- signing in -----------------------------------------------------------------------------------


@routes.get("/")
async def home(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther("/projects" if request.get(SESSION) else "/login")


def _with_pre_cookie(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    made = request.get(PRE)
    if made:
        security.set_cookie(response, security.PRE_COOKIE, made,
                            secure=_console(request).secure_cookies)
    return response


def _pre_session(request: web.Request) -> None:
    """Forms shown before signing in are bound to a pre-session cookie."""
    if request.get(TOKEN) is None and not request.cookies.get(security.PRE_COOKIE):
        request[PRE] = security.new_token()


@routes.get("/login")
async def login_page(request: web.Request) -> web.StreamResponse:
    c = _console(request)
    if request.get(SESSION) is not None:
        raise web.HTTPSeeOther(_safe_next(request.query.get("next")))
    _pre_session(request)
    response = render(request, "login.html", next=request.query.get("next", ""),
                      expired=request.query.get("expired") == "1",
                      has_users=await c.store.count_users() > 0)
    return _with_pre_cookie(request, response)


async def sign_in(c: Console, request: web.Request, email: str, password: str) -> Any:
    await c.limiter.hit(request.remote or "", email)
    user = await c.store.user_by_email(email) if email else None
    loop = asyncio.get_running_loop()
    # The same work for an unknown address as for a wrong password.
    if c.dummy_hash is None:
        c.dummy_hash = await loop.run_in_executor(None, c.hasher.hash, "not a password")
    encoded = user.password_hash if user else c.dummy_hash
    ok = await loop.run_in_executor(None, c.hasher.verify, encoded, password)
    if user is None or not ok:
        return None
    return user


@routes.post("/login")
async def login_submit(request: web.Request) -> web.StreamResponse:
    c = _console(request)
    form = await forms.read(request)
    email, next_page = forms.text(form, "email"), forms.text(form, "next")
    try:
        user = await sign_in(c, request, email, forms.text(form, "password"))
    except RateLimited as exc:
        response = render(request, "login.html", status=429, next=next_page, expired=False,
                          has_users=True, values={"email": email},
                          errors={"email": exc.message})
        response.headers.update(exc.headers)
        return response
    if user is None:
        return render(request, "login.html", status=401, next=next_page, expired=False,
                      has_users=await c.store.count_users() > 0, values={"email": email},
                      errors={"password": "wrong email or password"})
    return await _start_session(request, user.id, _safe_next(next_page))


async def _start_session(request: web.Request, user_id: int, target: str) -> web.StreamResponse:
    c = _console(request)
    token = await c.store.create_session(user_id, "browser", c.session_ttl)
    response = web.HTTPSeeOther(target)
    security.set_cookie(response, security.SESSION_COOKIE, token, secure=c.secure_cookies)
    return response


@routes.post("/logout")
async def logout(request: web.Request) -> web.StreamResponse:
    c = _console(request)
    token = request.cookies.get(security.SESSION_COOKIE)
    if token:
        await c.store.end_session(token)
    response = web.HTTPSeeOther("/login")
    response.del_cookie(security.SESSION_COOKIE, path="/")
    return response


@routes.get("/setup")
async def setup_page(request: web.Request) -> web.StreamResponse:
    c = _console(request)
    token = request.query.get("token", "")
    valid = await c.store.count_users() == 0 and await c.store.setup_token_valid(token)
    _pre_session(request)
    response = render(request, "setup.html", status=200 if valid else 410, token=token,
                      valid=valid)
    return _with_pre_cookie(request, response)


@routes.post("/setup")
async def setup_submit(request: web.Request) -> web.StreamResponse:
    c = _console(request)
    form = await forms.read(request)
    token, email = forms.text(form, "token"), forms.text(form, "email")
    password = forms.text(form, "new_password")
    errors = {}
    if "@" not in email:
        errors["email"] = "give your email address; it is your sign-in name"
    if len(password) < 10:
        errors["new_password"] = "at least 10 characters"
    elif password != forms.text(form, "repeat_password"):
        errors["repeat_password"] = "the two passwords differ"
    if errors:
        return render(request, "setup.html", status=422, token=token, valid=True,
                      values={"email": email}, errors=errors)
    loop = asyncio.get_running_loop()
    encoded = await loop.run_in_executor(None, c.hasher.hash, password)
    user = await c.store.create_first_user(token, email, encoded)
    if user is None:
        return render(request, "setup.html", status=410, token=token, valid=False)
    return await _start_session(request, user.id, "/projects")


# -- step 1: projects ---------------------------------------------------------------------------------


async def _project_rows(c: Console) -> list[tuple[Any, Any, list[str]]]:
    """Each project with its connections and the stages that are live."""
    listed: list[tuple[Any, Any, list[str]]] = []
    for found in await c.store.projects():
        rows = await c.store.connections(found.id)
        running = [r.stage for r in rows if (d := await c.store.deployment(r.id))
                   and d.desired == "running"]
        listed.append((found, rows, running))
    return listed


@routes.get("/projects")
async def project_list(request: web.Request) -> web.StreamResponse:
    return render(request, "projects.html", projects=await _project_rows(_console(request)),
                  **_values_or_stash(request))


def _values_or_stash(request: web.Request) -> dict[str, Any]:
    restored = stashed(request)
    return {"values": restored, "restored": True} if restored is not None else {}


@routes.post("/projects")
async def project_create(request: web.Request) -> web.StreamResponse:
    c = _console(request)
    form = await _form(request)
    try:
        created = await projects.create_project(c, form)
    except FieldError as exc:
        return render(request, "projects.html", status=exc.status, projects=await _project_rows(c),
                      errors=exc.errors, values=form)
    raise redirect(request, f"/projects/{created.id}/connections",
                   f"Project {created.name} created. Next: add a connection.")


@routes.get("/projects/import")
async def import_page(request: web.Request) -> web.StreamResponse:
    return render(request, "import.html")


@routes.post("/projects/import")
async def import_submit(request: web.Request) -> web.StreamResponse:
    c = _console(request)
    data = await request.post()
    upload = data.get("file")
    text = ""
    if isinstance(upload, web.FileField):
        text = upload.file.read().decode("utf-8", "replace")
    text = text or str(data.get("text") or "")
    try:
        if not text.strip():
            raise FieldError({"file": "choose a swain.toml file or paste its text"})
        created, notes = await projects.import_project(c, text, dict(os.environ))
    except FieldError as exc:
        return render(request, "import.html", status=exc.status, errors=exc.errors,
                      values={"text": text})
    message = f"Imported {created.name}." + (" " + " ".join(notes) if notes else "")
    raise redirect(request, f"/projects/{created.id}", message, "warn" if notes else "ok")


@routes.get("/projects/{project}")
async def project_page(request: web.Request) -> web.StreamResponse:
    view = await load(request)
    return _project_page(request, view, "project.html", "project")


@routes.post("/projects/{project}/rename")
async def project_rename(request: web.Request) -> web.StreamResponse:
    c = _console(request)
    view = await load(request)
    form = await _form(request)
    try:
        await projects.rename_project(c, view.project, form)
    except FieldError as exc:
        return _project_page(request, view, "project.html", "project", status=exc.status,
                             errors=exc.errors, values=form)
    raise redirect(request, f"/projects/{view.project.id}", "Project saved.")


@routes.post("/projects/{project}/delete")
async def project_delete(request: web.Request) -> web.StreamResponse:
    c = _console(request)
    view = await load(request)
    form = await _form(request)
    try:
        await projects.delete_project(c, view.project, form)
    except FieldError as exc:
        return _project_page(request, view, "project.html", "project", status=exc.status,
                             errors=exc.errors, values=form)
    raise redirect(request, "/projects", f"Project {view.project.name} deleted.")


@routes.get("/projects/{project}/export")
async def project_export(request: web.Request) -> web.StreamResponse:
    view = await load(request)
    text, _ = await projects.export(_console(request), view.project)
    return web.Response(text=text, content_type="application/toml", charset="utf-8",
                        headers={"Content-Disposition": 'attachment; filename="swain.toml"'})


# -- step 2: connections -----------------------------------------------------------------------------


def _connection_values(view: Overview, request: web.Request) -> dict[str, Any] | None:
    raw = request.query.get("edit", "")
    for row in view.connections:
        if raw.isdigit() and row.id == int(raw):
            return {"id": str(row.id), "stage": row.stage, "dialect": row.dialect,
                    "host": row.host or "", "port": str(row.port or ""),
                    "database": row.database or "", "username": row.username or "",
                    "schemas": ", ".join(row.options.get("schemas") or [])}
    return None


@routes.get("/projects/{project}/connections")
async def connections_page(request: web.Request) -> web.StreamResponse:
    view = await load(request)
    return _project_page(request, view, "connections.html", "connections",
                         values=_connection_values(view, request), tested={},
                         describe=projects.describe, address=projects.address)


async def _save_connection(request: web.Request, connection_id: int | None) -> web.StreamResponse:
    c = _console(request)
    view = await load(request)
    form = await _form(request)
    try:
        saved = await projects.save_connection(c, view.project, connection_id, form)
    except FieldError as exc:
        values = {**form, "id": str(connection_id or "")}
        return _project_page(request, view, "connections.html", "connections",
                             status=exc.status, errors=exc.errors, values=values, tested={},
                             describe=projects.describe, address=projects.address)
    row = await projects.connection(c, view.project.id, saved)
    result = await database.test_connection(c, view.project, row)
    kind = "ok" if result.ok else "warn"
    note = result.message if result.ok else f"saved, but the test failed ({result.field}: " \
        f"{result.message})"
    raise redirect(request, f"/projects/{view.project.id}/connections?connection={saved}",
                   f"Connection {row.stage} saved; {note}", kind)


@routes.post("/projects/{project}/connections")
async def connection_create(request: web.Request) -> web.StreamResponse:
    return await _save_connection(request, None)


@routes.post("/projects/{project}/connections/{connection}")
async def connection_update(request: web.Request) -> web.StreamResponse:
    view = await load(request)
    return await _save_connection(request, _connection_of(view, request).id)


@routes.post("/projects/{project}/connections/{connection}/test")
async def connection_test(request: web.Request) -> web.StreamResponse:
    c = _console(request)
    view = await load(request)
    row = _connection_of(view, request)
    result = await database.test_connection(c, view.project, row)
    return _project_page(request, view, "connections.html", "connections",
                         tested={row.id: result}, describe=projects.describe,
                         address=projects.address)


@routes.post("/projects/{project}/connections/{connection}/delete")
async def connection_delete(request: web.Request) -> web.StreamResponse:
    c = _console(request)
    view = await load(request)
    row = _connection_of(view, request)
    await projects.delete_connection(c, view.project, row)
    raise redirect(request, f"/projects/{view.project.id}/connections",
                   f"Connection {row.stage} deleted.")


# -- step 3: schema ------------------------------------------------------------------------------------


@routes.get("/projects/{project}/schema")
async def schema_page(request: web.Request) -> web.StreamResponse:
    c = _console(request)
    view = await load(request)
    changes = None
    svg = ""
    if view.current is not None:
        recent = await c.store.snapshots(view.current.id, 2)
        if len(recent) == 2:
            from swain.core.schema import Schema, diff

            changes = diff(Schema.from_json(recent[1].schema), Schema.from_json(recent[0].schema))
        if recent:
            view.snapshot = recent[0]
            from swain.core.schema import Schema

            view.schema = Schema.from_json(recent[0].schema)
        else:
            view.snapshot = view.schema = None
    if view.schema is not None:
        svg = diagram.render(view.schema)
    return _project_page(request, view, "schema.html", "schema", changes=changes, diagram=svg)


@routes.post("/projects/{project}/connections/{connection}/sync")
async def schema_sync(request: web.Request) -> web.StreamResponse:
    c = _console(request)
    view = await load(request)
    row = _connection_of(view, request)
    target = f"/projects/{view.project.id}/schema?connection={row.id}"
    try:
        result = await database.sync(c, view.project, row)
    except FieldError as exc:
        field, message = next(iter(exc.errors.items()))
        raise redirect(request, target, f"Sync failed ({field}): {message}", "error") from None
    tables = len(result.snapshot.schema["tables"])
    if result.changes is None:
        note = f"first snapshot: {tables} tables and views"
    else:
        note = f"{len(result.changes)} change(s) since the last sync" if result.changes \
            else "no change since the last sync"
    raise redirect(request, target, f"Schema synced: {note}.")


# -- step 4: authentication settings -------------------------------------------------------------------


async def _auth_page(request: web.Request, view: Overview, *, status: int = 200,
                     errors: dict[str, str] | None = None, values: dict[str, Any] | None = None,
                     plan: Any = None, card: str | None = None) -> web.Response:
    c = _console(request)
    route_list: list[str] = []
    if view.current is not None and view.schema is not None:
        try:
            route_list = documents.routes(await documents.document(c, view.project, view.current))
        except (FieldError, ApiError):
            route_list = [f"GET /{t.key}" for t in view.schema.visible_tables]
    for route in ("POST /auth/login", "POST /auth/signup", "POST /auth/password_reset",
                  "POST /auth/password_reset/confirm"):
        if route not in route_list:
            route_list.insert(0, route)
    plan_error = None
    if plan is None and view.current is not None and view.setting("rls.tenant_table"):
        try:
            plan = await database.tenancy_plan(c, view.project, view.current)
        except FieldError as exc:
            plan_error = "; ".join(f"{k}: {v}" for k, v in exc.errors.items())
    return _project_page(request, view, "auth.html", "auth", status=status, errors=errors,
                         values=values, routes=route_list, plan=plan, plan_error=plan_error,
                         card=card)


@routes.get("/projects/{project}/auth")
async def auth_page(request: web.Request) -> web.StreamResponse:
    return await _auth_page(request, await load(request))


def _auth_action(card: str, save: Any) -> Any:
    async def handler(request: web.Request) -> web.StreamResponse:
        c = _console(request)
        view = await load(request)
        form = await _form(request)
        try:
            message = await save(c, view, form)
        except FieldError as exc:
            return await _auth_page(request, view, status=exc.status, errors=exc.errors,
                                    values=form, card=card)
        raise redirect(request, view.link("auth") + f"#{card}", message)

    return handler


async def _general(c: Console, view: Overview, form: dict[str, Any]) -> str:
    await steps.save_general(c, view.project, form)
    return "General security saved."


async def _tenancy(c: Console, view: Overview, form: dict[str, Any]) -> str:
    await steps.save_tenancy(c, view.project, form, view.schema)
    return "Tenant scoping saved; review the SQL below before applying it."


async def _tenancy_apply(c: Console, view: Overview, form: dict[str, Any]) -> str:
    if view.current is None:
        raise FieldError({"plan": "add a connection first"})
    changed = await steps.apply_tenancy(c, view.project, view.current, form)
    return f"Tenant column added to {changed} table(s); the schema was synced again."


async def _smtp(c: Console, view: Overview, form: dict[str, Any]) -> str:
    await steps.save_smtp(c, view.project, form)
    return "Email settings saved."


async def _smtp_test(c: Console, view: Overview, form: dict[str, Any]) -> str:
    return await database.send_test_email(c, view.project, forms.text(form, "to"))


routes.post("/projects/{project}/auth/general")(_auth_action("general", _general))
routes.post("/projects/{project}/auth/tenancy")(_auth_action("tenancy", _tenancy))
routes.post("/projects/{project}/auth/tenancy/apply")(_auth_action("tenancy", _tenancy_apply))
routes.post("/projects/{project}/auth/smtp")(_auth_action("smtp", _smtp))
routes.post("/projects/{project}/auth/smtp/test")(_auth_action("smtp", _smtp_test))


# -- step 5: mapping ---------------------------------------------------------------------------------------


def _mapping_values(view: Overview) -> tuple[dict[str, Any], set[str]]:
    mapped = view.setting("mapping") or {}
    values: dict[str, Any] = {}
    suggested: set[str] = set()
    proposals = suggest.suggestions(view.schema) if view.schema is not None else {}
    for card in CARDS:
        given = mapped.get(card) or proposals.get(card) or {}
        if card not in mapped and card in proposals:
            suggested.add(card)
        for role, column in given.items():
            values[f"mapping.{card}.{role}"] = column
    return values, suggested


async def _mapping_page(request: web.Request, view: Overview, *, status: int = 200,
                        errors: dict[str, str] | None = None,
                        values: dict[str, Any] | None = None,
                        warnings: dict[str, str] | None = None) -> web.Response:
    initial, suggested = _mapping_values(view)
    missing: list[str] = []
    ddl = ""
    if view.schema is not None:
        dialect = view.current.dialect if view.current is not None else view.schema.dialect
        missing, ddl = steps.missing_ddl(view.project, view.schema, dialect)
    if warnings is None and view.schema is not None and view.setting("mapping"):
        check, _ = await steps.check_mapping(_console(request), view.project,
                                             view.setting("mapping"), view.schema)
        warnings = check.warnings
    tables = {t.key: [c.name for c in t.columns] for t in view.schema.tables.values()} \
        if view.schema is not None else {}
    return _project_page(request, view, "mapping.html", "mapping", status=status, errors=errors,
                         values=values if values is not None else initial,
                         cards=CARDS, suggested=suggested, tables=tables,
                         tables_json=json.dumps(tables), warnings=warnings or {},
                         missing=missing, ddl=ddl)


@routes.get("/projects/{project}/mapping")
async def mapping_page(request: web.Request) -> web.StreamResponse:
    return await _mapping_page(request, await load(request))


@routes.post("/projects/{project}/mapping")
async def mapping_save(request: web.Request) -> web.StreamResponse:
    c = _console(request)
    view = await load(request)
    form = await _form(request)
    try:
        result = await steps.save_mapping(c, view.project, form, view.schema)
    except FieldError as exc:
        return await _mapping_page(request, view, status=exc.status, errors=exc.errors,
                                   values=form)
    note = f" {len(result.warnings)} warning(s) to review." if result.warnings else ""
    raise redirect(request, view.link("mapping"), "Mapping saved." + note,
                   "warn" if result.warnings else "ok")


# -- step 6: social -------------------------------------------------------------------------------------


async def _social_page(request: web.Request, view: Overview, **context: Any) -> web.Response:
    c = _console(request)
    public_url = view.setting("api.public_url")
    if not public_url and view.current is not None and view.current.id in view.deployments:
        public_url = view.deployments[view.current.id].base_url
    built = await projects.build(c, view.project, None,
                                 {"api.public_url": public_url} if public_url else None)
    return _project_page(request, view, "social.html", "social",
                         providers=steps.social_providers(built),
                         callbacks=steps.callback_urls(built), **context)


@routes.get("/projects/{project}/social")
async def social_page(request: web.Request) -> web.StreamResponse:
    return await _social_page(request, await load(request))


@routes.post("/projects/{project}/social")
async def social_save(request: web.Request) -> web.StreamResponse:
    c = _console(request)
    view = await load(request)
    form = await _form(request)
    try:
        await steps.save_social(c, view.project, form)
    except FieldError as exc:
        return await _social_page(request, view, status=exc.status, errors=exc.errors,
                                  values=form)
    raise redirect(request, view.link("social"), "Social login saved.")


# -- step 7: authorization -------------------------------------------------------------------------------


async def _rbac_state(c: Console, view: Overview) -> dict[str, Any]:
    if view.current is None:
        return {"rbac_error": "add a connection first (step 2)"}

    async def read(store: Any) -> dict[str, Any]:
        roles = await store.names("role")
        permissions = await store.names("permission")
        return {"roles": roles, "permissions": permissions,
                "grants": {f"{r}|{p}" for r, p in await store.grants()},
                "users": await store.users(200),
                "role_descriptions": store.has_description("role")}

    try:
        state = await database.with_rbac(c, view.project, view.current, read)
    except FieldError as exc:
        return {"rbac_error": "; ".join(exc.errors.values())}
    except Exception as exc:  # the database may be down: say so on the page
        log.warning("cannot read the roles of project %d: %s", view.project.id, exc)
        return {"rbac_error": f"cannot read the roles: {type(exc).__name__}"}
    state["suggestions"] = steps.suggested_permissions(
        view.schema, {name for name, _ in state["permissions"]})
    return state


async def _authorization_page(request: web.Request, view: Overview, **context: Any
                              ) -> web.Response:
    state = await _rbac_state(_console(request), view)
    state.setdefault("rbac_error", None)
    return _project_page(request, view, "authorization.html", "authorization",
                         **{**state, **context})


@routes.get("/projects/{project}/authorization")
async def authorization_page(request: web.Request) -> web.StreamResponse:
    return await _authorization_page(request, await load(request))


@routes.post("/projects/{project}/authorization")
async def authorization_action(request: web.Request) -> web.StreamResponse:
    c = _console(request)
    view = await load(request)
    form = await _form(request)
    if view.current is None:
        raise web.HTTPSeeOther(view.link("connections"))
    try:
        message = await steps.rbac_action(c, view.project, view.current, form)
    except FieldError as exc:
        return await _authorization_page(request, view, status=exc.status, errors=exc.errors,
                                         values=form)
    raise redirect(request, view.link("authorization"), message[0].upper() + message[1:] + ".")


@routes.post("/projects/{project}/authorization/enable")
async def authorization_enable(request: web.Request) -> web.StreamResponse:
    c = _console(request)
    view = await load(request)
    form = await _form(request)
    try:
        await steps.save_rbac_enabled(c, view.project, form)
    except FieldError as exc:
        return await _authorization_page(request, view, status=exc.status, errors=exc.errors,
                                         values=form)
    state = "on" if forms.flag(form, "rbac.enabled") else "off"
    raise redirect(request, view.link("authorization"), f"Role-based access control is {state}.")


# -- step 8: deploy -----------------------------------------------------------------------------------------


async def _deploy_page(request: web.Request, view: Overview, **context: Any) -> web.Response:
    c = _console(request)
    statuses: dict[int, deploy.Status] = {}
    for row in view.connections:
        found = view.deployments.get(row.id)
        if found is not None:
            statuses[row.id] = await c.deployer.status(found)
    suggested = {row.id: (view.deployments[row.id].port if row.id in view.deployments
                          else 8200 + row.id) for row in view.connections}
    return _project_page(request, view, "deploy.html", "deploy", statuses=statuses,
                         ports=suggested, console_url=c.public_url, **context)


@routes.get("/projects/{project}/deploy")
async def deploy_page(request: web.Request) -> web.StreamResponse:
    return await _deploy_page(request, await load(request))


@routes.post("/projects/{project}/connections/{connection}/deploy")
async def deploy_start(request: web.Request) -> web.StreamResponse:
    c = _console(request)
    view = await load(request)
    row = _connection_of(view, request)
    form = await _form(request)
    try:
        found = await steps.deploy(c, view.project, row, form)
    except FieldError as exc:
        view = await load(request)
        return await _deploy_page(request, view, status=exc.status,
                                  errors={f"{row.id}.{k}": v for k, v in exc.errors.items()},
                                  values={f"{row.id}.{k}": v for k, v in form.items()})
    raise redirect(request, f"/projects/{view.project.id}/deploy?connection={row.id}",
                   f"The {row.stage} API is live at {found.base_url}.")


@routes.post("/projects/{project}/connections/{connection}/stop")
async def deploy_stop(request: web.Request) -> web.StreamResponse:
    c = _console(request)
    view = await load(request)
    row = _connection_of(view, request)
    await c.deployer.stop(row.id)
    raise redirect(request, f"/projects/{view.project.id}/deploy?connection={row.id}",
                   f"The {row.stage} API is stopped.")


def add_routes(app: web.Application) -> None:
    app.router.add_routes(routes)


__all__ = ["add_routes", "quote"]
