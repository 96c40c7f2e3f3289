"""The console's JSON API and its guards, over real HTTP against a real
``swain console`` process: sign-in, CSRF, rate limits, bad input named by
field, escaping, secrets encrypted at rest and never shown, export and
import of ``swain.toml``, the dynamic swagger document, and the store on
PostgreSQL."""

from __future__ import annotations

import contextlib
import re
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from console_helpers import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    ALICE,
    USER_PASSWORD,
    api_client,
    console,
    create_admin,
    shop_ddl,
    smtp_inbox,
)
from openapi_spec_validator import validate

from swain.contrib.testing import FreshDatabase, free_port, serving, write_config
from swain.contrib.testing.console import ConsoleProcess
from swain.contrib.testing.process import ServeProcess, within

__all__ = ["console", "smtp_inbox"]
SECRETS = {"password": "db-pass-9f3a1c", "smtp.password": "smtp-pass-77c1e0",
           "auth.jwt_secret": "jwt-secret-5b0e7d-long-enough-for-hs256-signing-ok",
           "social.google.client_secret": "google-secret-e4a9d2",
           "social.github.client_secret": "github-secret-0c8b33"}


@pytest.fixture(scope="module")
def http(console: ConsoleProcess) -> Iterator[httpx.Client]:
    with api_client(console.url) as client:
        yield client


@pytest.fixture(scope="module")
def shop() -> Iterator[FreshDatabase]:
    with FreshDatabase("sqlite") as db:
        db.run_script(shop_ddl("sqlite"))
        yield db


@pytest.fixture(scope="module")
def project(http: httpx.Client, shop: FreshDatabase) -> dict[str, Any]:
    made = http.post("/api/projects", json={"name": "API shop", "description": "by the API"})
    assert made.status_code == 201, made.text
    project_id = made.json()["id"]
    conn = http.post(f"/api/projects/{project_id}/connections",
                     json={"stage": "development", "url": shop.swain_url})
    assert conn.status_code == 201, conn.text
    connection_id = conn.json()["id"]
    synced = http.post(f"/api/projects/{project_id}/connections/{connection_id}/sync")
    assert synced.status_code == 200, synced.text
    assert "orders" in synced.json()["tables"] and synced.json()["changes"] is None
    return {"id": project_id, "connection": connection_id}


def _details(response: httpx.Response) -> dict[str, str]:
    body = response.json()["error"]
    return {d["path"]: d["message"] for d in body.get("details", [])}


@contextlib.contextmanager
def _browser_session(url: str) -> Iterator[httpx.Client]:
    """A cookie session made by the login form, as a browser does."""
    with httpx.Client(base_url=url, timeout=30) as client:
        page = client.get("/login")
        token = re.search(r'name="csrf_token" value="([0-9a-f]+)"',  # type: ignore[union-attr]
                          page.text).group(1)
        done = client.post("/login", data={"csrf_token": token, "email": ADMIN_EMAIL,
                                           "password": ADMIN_PASSWORD})
        assert done.status_code == 303, done.text
        yield client


def _csrf(client: httpx.Client, path: str = "/projects") -> str:
    return re.search(r'name="csrf-token" content="([0-9a-f]+)"',  # type: ignore[union-attr]
                     client.get(path).text).group(1)


# -- signing in ----------------------------------------------------------------------------


def test_the_api_needs_a_token(console: ConsoleProcess) -> None:
    answer = httpx.get(console.url + "/api/projects")
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "unauthorized"
    assert httpx.get(console.url + "/api/projects",
                     headers={"Authorization": "Bearer not-a-token"}).status_code == 401
    wrong = httpx.post(console.url + "/api/login", json={"email": ADMIN_EMAIL, "password": "no"})
    assert wrong.status_code == 401 and "wrong email or password" in wrong.text
    page = httpx.get(console.url + "/projects")
    assert page.status_code == 303 and page.headers["location"].startswith("/login?next=")


def test_the_setup_link_works_once(console: ConsoleProcess) -> None:
    assert console.setup_link
    again = httpx.get(console.setup_link)
    assert again.status_code == 410 and "no longer valid" in again.text


def test_login_is_rate_limited(console: ConsoleProcess) -> None:
    answers = [httpx.post(console.url + "/api/login",
                          json={"email": "nobody@acme.test", "password": "guess"}).status_code
               for _ in range(11)]
    assert answers[:10] == [401] * 10 and answers[10] == 429
    limited = httpx.post(console.url + "/api/login",
                         json={"email": "nobody@acme.test", "password": "guess"})
    assert int(limited.headers["Retry-After"]) > 0


def test_a_change_without_the_csrf_token_is_refused(console: ConsoleProcess) -> None:
    with _browser_session(console.url) as browser:
        refused = browser.post("/projects", data={"name": "csrf test"})
        assert refused.status_code == 403 and "CSRF" in refused.text
        forged = browser.post("/projects", data={"name": "csrf test", "csrf_token": "0" * 64})
        assert forged.status_code == 403
        api = browser.post("/api/projects", json={"name": "csrf test"})
        assert api.status_code == 403 and api.json()["error"]["code"] == "forbidden"
        token = _csrf(browser)
        assert browser.get("/api/projects").status_code == 200  # reading needs no token
        made = browser.post("/api/projects", json={"name": "csrf test"},
                            headers={"X-CSRF-Token": token})
        assert made.status_code == 201
        cookie = browser.cookies.jar
        session = next(c for c in cookie if c.name == "swain_console_session")
        assert session.has_nonstandard_attr("HttpOnly")
    login = httpx.get(console.url + "/login")
    assert "SameSite=Lax" in login.headers["set-cookie"] and "HttpOnly" in login.headers["set-cookie"]
    assert "default-src 'self'" in login.headers["content-security-policy"]


def test_create_admin_command(console: ConsoleProcess) -> None:
    swain = str(Path(sys.executable).with_name("swain"))
    made = subprocess.run([swain, "console", "--data-dir", str(console.data_dir), "create-admin",
                           "--email", "second@acme.test", "--password-stdin"],
                          input="second admin password\n", capture_output=True, text=True,
                          timeout=60)
    assert made.returncode == 0, made.stderr
    with api_client(console.url, "second@acme.test", "second admin password") as other:
        assert other.get("/api/me").json()["email"] == "second@acme.test"
    again = subprocess.run([swain, "console", "--data-dir", str(console.data_dir),
                            "create-admin", "--email", "SECOND@acme.test", "--password-stdin"],
                           input="second admin password\n", capture_output=True, text=True,
                           timeout=60)
    assert again.returncode != 0 and "exists already" in again.stderr


# -- bad input --------------------------------------------------------------------------------


def test_duplicate_project_names_are_refused(http: httpx.Client, project: dict[str, Any]) -> None:
    again = http.post("/api/projects", json={"name": "api SHOP"})
    assert again.status_code == 409
    assert "exists already" in _details(again)["name"]
    assert http.post("/api/projects", json={"name": "  "}).status_code == 422
    other = http.post("/api/projects", json={"name": "renamed later"}).json()
    clash = http.patch(f"/api/projects/{other['id']}", json={"name": "API shop"})
    assert clash.status_code == 409


def test_connection_fields_are_checked(http: httpx.Client, project: dict[str, Any]) -> None:
    base = f"/api/projects/{project['id']}/connections"
    for port, message in (("70000", "between 1 and 65535"), ("0", "between 1 and 65535"),
                          ("abc", "expected a number")):
        bad = http.post(base, json={"stage": "staging", "dialect": "postgresql",
                                    "host": "127.0.0.1", "port": port, "database": "x"})
        assert bad.status_code == 422 and message in _details(bad)["port"], bad.text
    same_stage = http.post(base, json={"stage": "development", "dialect": "sqlite",
                                       "database": "/tmp/other.db"})
    assert same_stage.status_code == 409 and "stage" in _details(same_stage)
    relative = http.post(base, json={"stage": "staging", "dialect": "sqlite",
                                     "database": "shop.db"})
    assert "absolute path" in _details(relative)["database"]
    bad_url = http.post(base, json={"stage": "staging", "url": "not a url"})
    assert "url" in _details(bad_url)


def _test(http: httpx.Client, project_id: int, **fields: Any) -> dict[str, Any]:
    made = http.post(f"/api/projects/{project_id}/connections",
                     json={"stage": "production", **fields})
    assert made.status_code == 201, made.text
    try:
        return http.post(f"/api/projects/{project_id}/connections/{made.json()['id']}/test"
                         ).json()  # type: ignore[no-any-return]
    finally:
        http.delete(f"/api/projects/{project_id}/connections/{made.json()['id']}")


def test_connection_failures_are_explained(http: httpx.Client, project: dict[str, Any]) -> None:
    pid = project["id"]
    refused = _test(http, pid, dialect="postgresql", host="127.0.0.1", port=free_port(),
                    database="shop", username="postgres")
    assert refused["ok"] is False and refused["field"] == "host"
    assert "connection refused" in refused["message"]
    unknown = _test(http, pid, dialect="postgresql", host="no-such-host.invalid", port=5432,
                    database="shop", username="postgres")
    assert unknown["field"] == "host" and "cannot be resolved" in unknown["message"]
    missing = _test(http, pid, dialect="postgresql", host="127.0.0.1", port=5432,
                    database="swain_no_such_database", username="postgres")
    assert missing["field"] == "database" and "no database" in missing["message"]
    denied = _test(http, pid, dialect="mysql", host="127.0.0.1", port=3306, database="test",
                   username="nobody_here", password=SECRETS["password"])
    assert denied["field"] == "password" and "refused user 'nobody_here'" in denied["message"]
    assert SECRETS["password"] not in str(denied)
    sqlite = _test(http, pid, dialect="sqlite", database="/nonexistent/folder/x.db")
    assert sqlite["field"] == "database" and "no SQLite file" in sqlite["message"]


def test_a_mapping_to_a_missing_column_is_named(http: httpx.Client,
                                                project: dict[str, Any]) -> None:
    path = f"/api/projects/{project['id']}/mapping"
    cards = {"mapping.user.table": "app_users", "mapping.user.id": "id",
             "mapping.user.email": "email", "mapping.user.password": "password_hash"}
    bad = http.put(path, json=cards)
    assert bad.status_code == 422
    assert 'column "email" not in table "app_users"; did you mean "email_address"' in \
        _details(bad)["mapping.user.email"]
    check = http.post(path + "/check", json={**cards, "mapping.user.email": "email_address",
                                             "mapping.user.isactive": "first_name"}).json()
    assert check["problems"] == {}
    assert "expected boolean or integer" in check["warnings"]["mapping.user.isactive"]
    missing_table = http.put(path, json={"mapping.role.table": "rolez", "mapping.role.id": "id",
                                         "mapping.role.name": "name"})
    assert 'did you mean "roles"' in _details(missing_table)["mapping.role.table"]
    suggestions = http.get(path).json()["suggestions"]
    assert suggestions["user"]["email"] == "email_address"


def test_settings_are_checked_by_field(http: httpx.Client, project: dict[str, Any]) -> None:
    base = f"/api/projects/{project['id']}/settings"
    reset = http.put(base + "/smtp", json={"smtp.host": "127.0.0.1", "smtp.base_url":
                                            "https://app.test", "smtp.password_reset_path":
                                            "/reset-password"})
    assert reset.status_code == 422 and "%s" in _details(reset)["smtp.password_reset_path"]
    expiry = http.put(base + "/general", json={"auth.enabled": True,
                                               "auth.access_token_expiry": "soon"})
    assert "expected a duration" in _details(expiry)["auth.access_token_expiry"]
    weak = http.put(base + "/general", json={"auth.enabled": True, "auth.jwt_secret": "short"})
    assert "at least 32 bytes" in _details(weak)["auth.jwt_secret"]
    route = http.put(base + "/general", json={"auth.enabled": True,
                                              "auth.public_routes": "products"})
    assert "auth.public_routes" in _details(route)
    tenancy = http.put(base + "/tenancy", json={"rls.tenant_table": "acounts"})
    assert "did you mean 'accounts'" in _details(tenancy)["rls.tenant_table"]
    port = http.put(base + "/smtp", json={"smtp.port": "99999"})
    assert "between 1 and 65535" in _details(port)["smtp.port"]
    assert http.put(base + "/nonsense", json={}).status_code == 404


def test_bad_json_is_refused(http: httpx.Client, project: dict[str, Any]) -> None:
    path = f"/api/projects/{project['id']}/settings/general"
    for body in (b'{"auth.enabled": NaN}', b'{"a": 1, "a": 2}', b"[1, 2]", b"{"):
        answer = http.put(path, content=body, headers={"Content-Type": "application/json"})
        assert answer.status_code == 400, body


def test_html_and_quotes_in_names_are_escaped(http: httpx.Client, console: ConsoleProcess,
                                              shop: FreshDatabase) -> None:
    name = """<script>alert("x")</script> & 'Q'"""
    made = http.post("/api/projects", json={"name": name, "description": "<b>bold</b>"})
    assert made.status_code == 201
    pid = made.json()["id"]
    conn = http.post(f"/api/projects/{pid}/connections",
                     json={"stage": "development", "url": shop.swain_url}).json()
    http.post(f"/api/projects/{pid}/connections/{conn['id']}/sync")
    with _browser_session(console.url) as browser:
        for page in ("/projects", f"/projects/{pid}", f"/projects/{pid}/connections",
                     f"/projects/{pid}/schema", f"/projects/{pid}/auth",
                     f"/projects/{pid}/mapping", f"/projects/{pid}/deploy"):
            html = browser.get(page).text
            assert "<script>alert" not in html and "<b>bold" not in html, page
            assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &#39;Q&#39;" in html, page
    exported = http.get(f"/api/projects/{pid}/export").text
    assert 'name = "<script>alert(\\"x\\")</script> & \'Q\'"' in exported


@pytest.fixture(scope="module")
def postgres_shop() -> Iterator[FreshDatabase]:
    with FreshDatabase("postgresql") as db:
        db.run_script(shop_ddl("postgresql"))
        yield db


def test_secrets_are_sealed_and_never_shown(http: httpx.Client, console: ConsoleProcess,
                                            postgres_shop: FreshDatabase) -> None:
    made = http.post("/api/projects", json={"name": "Secrets"}).json()
    pid = made["id"]
    conn = http.post(f"/api/projects/{pid}/connections", json={
        "stage": "development", "url": postgres_shop.swain_url,
        "password": SECRETS["password"]})  # the local server trusts any password
    assert conn.status_code == 201 and conn.json()["has_password"] is True
    cid = conn.json()["id"]
    assert http.post(f"/api/projects/{pid}/connections/{cid}/sync").status_code == 200
    assert http.put(f"/api/projects/{pid}/mapping", json={
        "mapping.user.table": "app_users", "mapping.user.id": "id",
        "mapping.user.email": "email_address", "mapping.user.password": "password_hash",
        "mapping.social_profile.table": "social_profiles", "mapping.social_profile.id": "id",
        "mapping.social_profile.userid": "user_id", "mapping.social_profile.provider": "provider",
        "mapping.social_profile.provideruserid": "provider_user_id",
        "mapping.social_profile.email": "email",
        "mapping.social_profile.createdat": "created_at"}).json().get("error") is None
    settings = f"/api/projects/{pid}/settings"
    assert http.put(settings + "/general", json={
        "auth.enabled": True, "auth.jwt_secret": SECRETS["auth.jwt_secret"]}).status_code == 200
    assert http.put(settings + "/smtp", json={
        "smtp.host": "127.0.0.1", "smtp.password": SECRETS["smtp.password"],
        "smtp.base_url": "https://app.test"}).status_code == 200
    assert http.put(settings + "/social", json={
        "social.google.client_id": "g-id", "social.google.client_secret":
        SECRETS["social.google.client_secret"], "social.github.client_id": "gh-id",
        "social.github.client_secret": SECRETS["social.github.client_secret"]}).status_code == 200
    # a blank secret field keeps the stored secret
    assert http.put(settings + "/smtp", json={"smtp.host": "127.0.0.1", "smtp.password": "",
                                              "smtp.base_url": "https://app.test"}).status_code == 200
    shown = http.get(f"/api/projects/{pid}").json()
    assert {"auth.jwt_secret", "smtp.password", "social.google.client_secret",
            "social.github.client_secret"} <= set(shown["secrets_set"])
    exported = http.get(f"/api/projects/{pid}/export").text
    assert 'jwt_secret = "${SWAIN_AUTH_JWT_SECRET}"' in exported
    assert 'password = "${SWAIN_CONNECTIONS_DEVELOPMENT_PASSWORD}"' in exported
    assert 'client_secret = "${SWAIN_SOCIAL_GOOGLE_CLIENT_SECRET}"' in exported
    with _browser_session(console.url) as browser:
        pages = [browser.get(p).text for p in (
            f"/projects/{pid}", f"/projects/{pid}/connections?edit={cid}",
            f"/projects/{pid}/auth", f"/projects/{pid}/social", f"/projects/{pid}/deploy")]
    store = (console.data_dir / "console.db").read_bytes()
    for secret in SECRETS.values():
        for text in (str(shown), exported, *pages, console.log()):
            assert secret not in text
        assert secret.encode() not in store
    key = console.data_dir / "console.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_export_serves_anywhere_and_imports_back(http: httpx.Client, project: dict[str, Any],
                                                 tmp_path: Path) -> None:
    pid = project["id"]
    assert http.put(f"/api/projects/{pid}/settings/general", json={
        "auth.enabled": False}).status_code == 200
    text = http.get(f"/api/projects/{pid}/export").text
    path = tmp_path / "swain.toml"
    path.write_text(text)
    secret = {"SWAIN_AUTH_JWT_SECRET": "x" * 40}  # the project's secret, as the file names it
    with ServeProcess(path, "development", env=secret) as served:
        orders = httpx.get(served.url + "/orders", timeout=30)
        assert orders.status_code == 200 and orders.json()["total"] == 4
    imported = http.post("/api/projects/import",
                         json={"text": text.replace('name = "API shop"', 'name = "API shop 2"')})
    assert imported.status_code == 201, imported.text
    copy = imported.json()["project"]
    original = http.get(f"/api/projects/{pid}").json()
    assert copy["settings"] == original["settings"]
    assert [c["label"].split(" - ")[1] for c in copy["connections"]] == \
        [c["label"].split(" - ")[1] for c in original["connections"]]
    again = http.post("/api/projects/import", json={"text": text})
    assert again.status_code == 409
    broken = http.post("/api/projects/import", json={"text": text + "\n[api]\nnope = 1\n"})
    assert broken.status_code == 422
    unset = http.post("/api/projects/import", json={"text": (
        '[project]\nname = "With secret"\n[auth]\nenabled = true\n'
        'jwt_secret = "${SWAIN_TEST_UNSET_SECRET}"\n')})
    assert unset.status_code == 201
    assert "SWAIN_TEST_UNSET_SECRET" in unset.json()["notes"][0]


def test_dynamic_swagger(http: httpx.Client, project: dict[str, Any]) -> None:
    answer = http.get("/api/dynamic_swagger", params={"project": project["id"],
                                                      "connection": project["connection"]})
    assert answer.status_code == 200, answer.text
    document = answer.json()
    validate(document)
    assert "/orders" in document["paths"] and document["info"]["title"] == "API shop"
    assert http.get("/api/dynamic_swagger", params={"project": project["id"]}).status_code == 400
    assert http.get("/api/dynamic_swagger", params={"project": 999999,
                                                    "connection": 1}).status_code == 404
    assert httpx.get(str(http.base_url) + "/api/dynamic_swagger",
                     params={"project": project["id"], "connection": project["connection"]}
                     ).status_code == 401


def test_the_api_document(console: ConsoleProcess) -> None:
    document = httpx.get(console.url + "/api/openapi.json").json()
    validate(document)
    assert {"/api/login", "/api/projects", "/api/projects/{project}/connections",
            "/api/dynamic_swagger"} <= set(document["paths"])
    assert "post" in document["paths"]["/api/projects/{project}/connections/{connection}/sync"]


def test_the_store_on_postgresql(tmp_path: Path) -> None:
    with FreshDatabase("postgresql") as db:
        url = db.url.set(drivername="postgresql").render_as_string(hide_password=False)
        with ConsoleProcess(tmp_path / "data", store=url) as first:
            assert first.setup_link and "store: postgresql://" in first.log()
            create_admin(first.url, first.setup_link)
            with api_client(first.url) as client:
                assert client.post("/api/projects", json={"name": "kept"}).status_code == 201
            first.stop()
            first.start()
            assert first.setup_link is None  # a user exists: no new setup link
            with api_client(first.url) as client:
                assert [p["name"] for p in client.get("/api/projects").json()["data"]] == ["kept"]
        assert db.query("SELECT version_num FROM console_alembic_version") == [("c0001",)]


def test_deleting_a_project_needs_its_name(http: httpx.Client, shop: FreshDatabase) -> None:
    made = http.post("/api/projects", json={"name": "Short lived"}).json()
    http.post(f"/api/projects/{made['id']}/connections",
              json={"stage": "development", "url": shop.swain_url})
    wrong = http.delete(f"/api/projects/{made['id']}", params={"confirm": "short lived"})
    assert wrong.status_code == 422 and "confirm" in _details(wrong)
    assert http.delete(f"/api/projects/{made['id']}",
                       params={"confirm": "Short lived"}).status_code == 204
    assert http.get(f"/api/projects/{made['id']}").status_code == 404
    assert http.get(f"/api/projects/{made['id']}/connections").status_code == 404


def test_generate_makes_a_new_jwt_secret(http: httpx.Client, console: ConsoleProcess) -> None:
    made = http.post("/api/projects", json={"name": "Rotating"}).json()
    assert made["secrets_set"] == ["auth.jwt_secret"]  # made with the project
    store = console.data_dir / "console.db"
    before = store.read_bytes()
    done = http.put(f"/api/projects/{made['id']}/settings/general",
                    json={"auth.enabled": True, "auth.jwt_secret.generate": True})
    assert done.status_code == 200 and "auth.jwt_secret" in done.json()["secrets_set"]
    assert store.read_bytes() != before


def test_pages_load_only_local_assets(console: ConsoleProcess) -> None:
    with _browser_session(console.url) as browser:
        html = browser.get("/projects").text
    assets = re.findall(r'<(?:script|link|img)[^>]+(?:src|href)="([^"]+)"', html)
    assert assets and all(a.startswith("/static/") for a in assets), assets
    for asset in assets:
        assert httpx.get(console.url + asset, timeout=30).status_code == 200


def test_the_console_key(tmp_path: Path) -> None:
    from cryptography.fernet import Fernet

    from swain.plugins.console.crypto import ConsoleKeyError, Vault, load_key

    made = load_key(tmp_path / "console.key", environ={})
    assert stat.S_IMODE((tmp_path / "console.key").stat().st_mode) == 0o600
    assert load_key(tmp_path / "console.key", environ={}) == made
    given = Fernet.generate_key().decode()
    assert load_key(tmp_path / "other.key", environ={"SWAIN_CONSOLE_KEY": given}) == given.encode()
    with pytest.raises(ConsoleKeyError, match="not a console key"):
        load_key(tmp_path / "x.key", environ={"SWAIN_CONSOLE_KEY": "too short"})
    (tmp_path / "console.key").chmod(0o644)
    with pytest.raises(ConsoleKeyError, match="must be private"):
        load_key(tmp_path / "console.key", environ={})
    sealed = Vault(made).seal("a secret")
    assert "a secret" not in sealed and Vault(made).open(sealed) == "a secret"
    with pytest.raises(ConsoleKeyError, match="not the one the store was written with"):
        Vault(Fernet.generate_key()).open(sealed)


def test_a_role_change_in_the_console_reaches_a_running_api_at_once(
        http: httpx.Client, tmp_path: Path) -> None:
    """The console changes roles in the stage's own tables and tells every running
    instance (PostgreSQL notifications): a permission cached for an hour is
    refused within a second."""
    channel = f"swain_t_{uuid.uuid4().hex[:12]}"
    with FreshDatabase("postgresql") as shop_pg:
        shop_pg.run_script(shop_ddl("postgresql"))
        path = write_config(
            tmp_path, shop_pg.swain_url, project={"name": f"Live roles {channel}"},
            auth={"enabled": True, "jwt_secret": "a console roles secret that is long enough",
                  "identity_cache": "1h"},
            rbac={"enabled": True, "permission_cache": "1h"},
            invalidation={"channel": channel},
            mapping={"user": {"table": "app_users", "id": "id", "email": "email_address",
                              "password": "password_hash", "isactive": "active"},
                     "role": {"table": "roles", "id": "id", "name": "name"},
                     "permission": {"table": "permissions", "id": "id", "name": "name"},
                     "role_permission": {"table": "role_permissions", "id": "id",
                                         "roleid": "role_id", "permissionid": "permission_id"},
                     "user_role": {"table": "user_roles", "id": "id", "userid": "user_id",
                                   "roleid": "role_id"}})
        imported = http.post("/api/projects/import", json={"text": path.read_text()})
        assert imported.status_code == 201, imported.text
        project = imported.json()["project"]
        rbac = f"/api/projects/{project['id']}/connections/{project['connections'][0]['id']}/rbac"
        for form in ({"action": "create_role", "name": "buyer"},
                     {"action": "create_permissions", "permissions": ["orders.read"]},
                     {"action": "save_matrix", "grant": ["buyer|orders.read"]},
                     {"action": "assign", "user": ALICE, "role": "buyer"}):
            done = http.post(rbac, json=form)
            assert done.status_code == 200, (form, done.text)
        with serving(path) as live, httpx.Client(base_url=live.url, timeout=30) as api:
            login = api.post("/auth/login", json={"email": ALICE, "password": USER_PASSWORD})
            token = {"Authorization": f"Bearer {login.json()['access_token']}"}
            assert api.get("/orders", headers=token).status_code == 200  # cached for an hour
            done = http.post(rbac, json={"action": "unassign", "user": ALICE, "role": "buyer"})
            assert done.status_code == 200, done.text
            within(lambda: api.get("/orders", headers=token).status_code == 403)


ACME_LOGIN = '''
from swain.core import hookimpl
from swain.plugins.auth.google import OidcProvider, oidc_settings


@hookimpl
def swain_config_sections():
    return {"social.acme": oidc_settings(
        discovery_url="https://id.acme.example/.well-known/openid-configuration")}


@hookimpl
def swain_social_providers():
    return [OidcProvider("acme", "Acme ID")]
'''


def test_the_social_step_offers_every_provider_a_plugin_declares(tmp_path: Path) -> None:
    (tmp_path / "acme_login.py").write_text(ACME_LOGIN, encoding="utf-8")
    data = tmp_path / "data"
    data.mkdir()
    secret = "acme-secret-31d9f0"
    with ConsoleProcess(data, env={"PYTHONPATH": str(tmp_path)}) as running:
        create_admin(running.url, running.setup_link)
        with api_client(running.url) as http:
            made = http.post("/api/projects/import", json={"text": (
                '[project]\nname = "Acme"\n[plugins]\nmodules = ["acme_login"]\n'
                '[mapping.user]\ntable = "users"\n'
                '[mapping.social_profile]\ntable = "social_profiles"\n')})
            assert made.status_code == 201, made.text
            pid = made.json()["project"]["id"]
            saved = http.put(f"/api/projects/{pid}/settings/social", json={
                "social.acme.client_id": "acme-id", "social.acme.client_secret": secret})
            assert saved.status_code == 200, saved.text
            shown = http.get(f"/api/projects/{pid}").json()
            assert "social.acme.client_secret" in shown["secrets_set"]
            assert shown["settings"]["social"]["acme"]["client_id"] == "acme-id"
        with _browser_session(running.url) as browser:
            page = browser.get(f"/projects/{pid}/social").text
        assert "Acme ID" in page and "Google" in page and "/auth/acme/callback" in page
        assert 'value="acme-id"' in page and secret not in page
