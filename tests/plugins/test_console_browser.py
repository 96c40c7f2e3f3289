"""The console in a real browser (Debian's headless chromium driven by Playwright):
a new user goes from nothing to a live, authenticated API over their own
PostgreSQL database through the eight steps, without editing a file; then
steps 2, 3 and 8 on MariaDB and SQLite.  The deployed API answers a login and a
filtered list.  Every step's page is saved as a screenshot for the README
(``docs/images/console/``)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from console_helpers import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    ALICE,
    BOB,
    USER_PASSWORD,
    api_client,
    shop_ddl,
    smtp_inbox,
)
from playwright.sync_api import sync_playwright

from swain.contrib.testing import FreshDatabase, free_port, selected_dialects
from swain.contrib.testing.console import ConsoleProcess

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "images" / "console"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
__all__ = ["smtp_inbox"]


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "Debian's chromium is required: apt-get install -y chromium"
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS,
                                          headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleProcess]:
    with ConsoleProcess(tmp_path_factory.mktemp("console")) as running:
        yield running


@pytest.fixture(scope="module")
def page(browser: Any, console: ConsoleProcess) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1360, "height": 900}, base_url=console.url)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=console.url)
    tab = context.new_page()
    tab.set_default_timeout(60_000)
    tab.on("dialog", lambda dialog: dialog.accept())  # "Stop the API?" and the like
    try:
        yield tab
    finally:
        context.close()


def signed_in(page: Any, console: ConsoleProcess) -> None:
    """Make sure the browser is signed in (the first admin is made if there is none)."""
    page.goto("/projects")
    if "/login" not in page.url:
        return
    link = console.setup_link
    page.goto(link or "/login")
    if link and page.locator("#new_password").count():
        page.fill("#email", ADMIN_EMAIL)
        page.fill("#new_password", ADMIN_PASSWORD)
        page.fill("#repeat_password", ADMIN_PASSWORD)
    else:
        page.goto("/login")
        page.fill("#email", ADMIN_EMAIL)
        page.fill("#password", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/projects")


def shot(page: Any, name: str, full: bool = True) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full)


def flash(page: Any) -> str:
    return str(page.locator(".flash").first.inner_text())


def field_error(page: Any, name: str) -> str:
    return str(page.locator(f'.field-error[data-field="{name}"]').first.inner_text())


# -- the walk on PostgreSQL -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def shop() -> Iterator[FreshDatabase]:
    with FreshDatabase("postgresql") as db:
        db.run_script(shop_ddl("postgresql"))
        yield db


@pytest.fixture(scope="module")
def walk() -> dict[str, Any]:
    return {}


def test_first_start_creates_the_admin(page: Any, console: ConsoleProcess) -> None:
    link = console.setup_link
    assert link, console.log()
    page.goto(link)
    page.fill("#email", ADMIN_EMAIL)
    page.fill("#new_password", "short")
    page.fill("#repeat_password", "short")
    page.click("button[type=submit]")
    assert "at least 10 characters" in field_error(page, "new_password")
    page.fill("#new_password", ADMIN_PASSWORD)
    page.fill("#repeat_password", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/projects")
    # the link was for one use only
    page.goto(link)
    assert "no longer valid" in page.inner_text("main")


def test_step1_project(page: Any, walk: dict[str, Any]) -> None:
    page.goto("/projects")
    page.fill("#name", "Acme Shop")
    page.fill("#description", "Orders and customers of Acme")
    page.click("form[action='/projects'] button[type=submit]")
    page.wait_for_url(re.compile(r"/projects/\d+/connections"))
    walk["project"] = int(re.search(r"/projects/(\d+)/", page.url).group(1))  # type: ignore[union-attr]
    # a second project of the same name is refused in place, naming the field
    page.goto("/projects")
    page.fill("#name", "acme shop")
    page.click("form[action='/projects'] button[type=submit]")
    assert "exists already" in field_error(page, "name")
    assert page.input_value("#name") == "acme shop"
    page.fill("#name", "")


def test_step2_connection(page: Any, walk: dict[str, Any], shop: FreshDatabase) -> None:
    project = walk["project"]
    page.goto(f"/projects/{project}/connections")
    url = shop.url
    page.select_option("#stage", "development")
    page.select_option("#dialect", "postgresql")
    page.fill("#host", url.host or "")
    page.fill("#port", "70000")
    page.fill("#database", url.database or "")
    page.fill("#username", url.username or "")
    page.fill("#password", "not needed locally")
    page.click("#form button[type=submit]")
    assert "between 1 and 65535" in field_error(page, "port")
    assert page.input_value("#host") == url.host  # nothing entered is lost
    page.fill("#port", str(url.port or 5432))
    page.fill("#password", "not needed locally")
    page.click("#form button[type=submit]")
    page.wait_for_url(re.compile(r"connection=\d+"))
    assert re.search(r"connected: postgresql \d+", flash(page))
    walk["connection"] = int(re.search(r"connection=(\d+)", page.url).group(1))  # type: ignore[union-attr]
    page.click(f"#connection-{walk['connection']} form[action$='/test'] button")
    assert "connected" in page.locator(".result.ok").inner_text()
    shot(page, "2-connections", full=False)


def test_step3_schema(page: Any, walk: dict[str, Any]) -> None:
    page.click(f"#connection-{walk['connection']} form[action$='/sync'] button")
    page.wait_for_url(re.compile(r"/schema\?connection="))
    assert "first snapshot" in flash(page)
    diagram = page.locator(".diagram svg")
    assert diagram.count() == 1
    for table in ("orders", "app_users", "roles", "notes"):
        assert page.locator(f".table-card h3:has-text('{table}')").count() >= 1
    assert page.locator(".erd-edge").count() >= 9  # one curve per foreign key
    shot(page, "3-schema")


EXCLUDED = ("products", "roles", "permissions", "role_permissions", "user_roles",
            "password_resets", "api_keys", "social_profiles")


def test_step4_authentication(page: Any, walk: dict[str, Any], smtp_inbox: Any,
                              shop: FreshDatabase) -> None:
    project, connection = walk["project"], walk["connection"]
    page.goto(f"/projects/{project}/auth?connection={connection}")
    # 4.1 general: auth on, a JWT secret made at creation, a public route from the real list
    assert page.is_checked("#general input[name='auth.enabled']")
    assert "set" in page.locator("#general .badge.ok").first.inner_text()
    page.fill("input[name='auth.access_token_expiry']", "15m")
    page.check("#general input[name='auth.public_routes'][value='GET /products']")
    page.click("#general button.primary")
    assert "General security saved" in flash(page)
    assert page.is_checked("#general input[name='auth.public_routes'][value='GET /products']")
    # 4.2 tenant scoping: the plan's SQL is shown and runs only once confirmed
    page.select_option("#general ~ #tenancy select[name='rls.tenant_table']", "accounts")
    page.fill("#tenancy input[name='rls.tenant_field']", "account_id")
    for table in EXCLUDED:
        page.check(f"#tenancy input[name='rls.exclude_tables'][value='{table}']")
    page.click("#tenancy form[action*='/auth/tenancy?'] button.primary")
    assert "Tenant scoping saved" in flash(page)
    sql = page.locator("#tenancy pre.sql").inner_text()
    assert 'ALTER TABLE notes ADD COLUMN account_id' in sql
    assert "orders" not in sql.split("-- notes")[0].split("hash")[-1]
    page.fill("#tenancy input[name='backfill']", "1")
    page.click("#tenancy form.apply button")
    assert "tick the box" in field_error(page, "confirm")
    assert shop.query("SELECT count(*) FROM information_schema.columns WHERE "
                      "table_name = 'notes' AND column_name = 'account_id'") == [(0,)]
    page.fill("#tenancy input[name='backfill']", "1")
    page.check("#tenancy form.apply input[name='confirm']")
    page.click("#tenancy form.apply button")
    assert "Tenant column added to 1 table" in flash(page)
    assert shop.query("SELECT account_id FROM notes") == [(1,)]
    page.check("#general input[name='rls.enabled']")
    page.click("#general button.primary")
    assert "General security saved" in flash(page)
    # 4.3 email: the reset path must contain %s; a test email really goes out
    port, inbox = smtp_inbox
    page.fill("input[name='smtp.host']", "127.0.0.1")
    page.fill("input[name='smtp.port']", str(port))
    page.select_option("select[name='smtp.security']", "none")
    page.fill("input[name='smtp.from_address']", "no-reply@acme.test")
    page.fill("input[name='smtp.from_name']", "Acme Shop")
    page.fill("input[name='smtp.base_url']", "https://app.acme.test")
    page.fill("input[name='smtp.password_reset_path']", "/reset-password")
    page.click("#smtp form[action*='/auth/smtp?'] button.primary")
    assert "must contain %s" in field_error(page, "smtp.password_reset_path")
    assert page.input_value("input[name='smtp.host']") == "127.0.0.1"
    page.fill("input[name='smtp.password_reset_path']", "/reset-password?token=%s")
    page.click("#smtp form[action*='/auth/smtp?'] button.primary")
    assert "Email settings saved" in flash(page)
    page.fill("#smtp input[name='to']", "ops@acme.test")
    page.click("#smtp form.inline-test button")
    assert "sent a test email to ops@acme.test" in flash(page)
    assert inbox.messages[-1]["To"] == "ops@acme.test"
    assert inbox.messages[-1]["From"] == "Acme Shop <no-reply@acme.test>"
    shot(page, "4-authentication")


def test_schema_shows_what_changed(page: Any, walk: dict[str, Any]) -> None:
    page.goto(f"/projects/{walk['project']}/schema?connection={walk['connection']}")
    changes = page.locator(".changes").inner_text()
    assert "+ column notes.account_id" in changes
    assert "+ foreign key notes(account_id) -> accounts(id)" in changes


def test_step5_mapping(page: Any, walk: dict[str, Any]) -> None:
    page.goto(f"/projects/{walk['project']}/mapping?connection={walk['connection']}")
    # pre-selected by name where the match is obvious
    expected = {"user": ("app_users", {"email": "email_address", "password": "password_hash",
                                       "firstname": "first_name", "isactive": "active"}),
                "password_reset_token": ("password_resets", {"userid": "user_id",
                                                             "expiresat": "expires_at"}),
                "api_key": ("api_keys", {"key": "key_hash", "revokedat": "revoked_at"}),
                "social_profile": ("social_profiles", {"provideruserid": "provider_user_id"}),
                "role": ("roles", {"name": "name"}), "permission": ("permissions", {}),
                "role_permission": ("role_permissions", {"permissionid": "permission_id"}),
                "user_role": ("user_roles", {"roleid": "role_id"})}
    for card, (table, columns) in expected.items():
        assert page.input_value(f"select[name='mapping.{card}.table']") == table, card
        for role, column in columns.items():
            assert page.input_value(f"select[name='mapping.{card}.{role}']") == column, role
    assert page.input_value("select[name='mapping.session.table']") == ""
    # checked as the user picks: a text column as the active flag is flagged at once
    page.select_option("select[name='mapping.user.isactive']", "first_name")
    warning = page.locator("[data-warning='mapping.user.isactive']")
    warning.wait_for(state="visible")
    assert "expected boolean or integer" in warning.inner_text()
    page.select_option("select[name='mapping.user.isactive']", "active")
    warning.wait_for(state="hidden")
    page.click("#mapping-form .sticky-actions button")
    assert "Mapping saved" in flash(page)
    page.click("#ddl summary")
    ddl = page.locator("#ddl-text").inner_text()
    assert "CREATE TABLE sessions" in ddl and "REFERENCES app_users (id)" in ddl
    shot(page, "5-mapping")


def test_step6_social(page: Any, walk: dict[str, Any]) -> None:
    page.goto(f"/projects/{walk['project']}/social?connection={walk['connection']}")
    page.fill("input[name='api.public_url']", "https://api.acme.test")
    page.fill("input[name='social.google.client_id']", "google-client-id.apps.example")
    page.fill("input[name='social.google.client_secret']", "google-secret-value")
    page.fill("input[name='social.github.client_id']", "github-client-id")
    page.fill("input[name='social.github.client_secret']", "github-secret-value")
    page.click("button.primary")
    assert "Social login saved" in flash(page)
    callbacks = [c.inner_text() for c in page.locator(".copy-source").all()]
    assert callbacks == ["https://api.acme.test/auth/github/callback",
                         "https://api.acme.test/auth/google/callback"]
    html = page.content()
    assert "google-secret-value" not in html and "github-secret-value" not in html
    page.locator("button.copy").first.click()
    page.wait_for_function("document.querySelector('button.copy').textContent === 'Copied'")
    assert page.evaluate("navigator.clipboard.readText()") == callbacks[0]
    shot(page, "6-social", full=False)


def test_step7_authorization(page: Any, walk: dict[str, Any], shop: FreshDatabase) -> None:
    page.goto(f"/projects/{walk['project']}/authorization?connection={walk['connection']}")
    page.check("input[name='rbac.enabled']")
    page.click("form[action*='/authorization/enable'] button")
    assert "Role-based access control is on" in flash(page)
    page.check("input[name='permissions'][value='orders.read']")
    page.check("input[name='permissions'][value='products.read']")
    page.click("form:has(input[value='create_permissions']) button")
    assert "Created 2 permission(s)" in flash(page)
    for role, description in (("member", "Reads orders"), ("guest", "Anonymous callers")):
        page.fill("form:has(input[value='create_role']) input[name='name']", role)
        page.fill("form:has(input[value='create_role']) input[name='description']", description)
        page.click("form:has(input[value='create_role']) button")
        assert f"Role {role} created" in flash(page)
    for grant in ("member|orders.read", "member|products.read", "guest|products.read"):
        page.check(f"input[name='grant'][value='{grant}']")
    page.click("form:has(input[value='save_matrix']) button")
    assert "Granted 3, revoked 0" in flash(page)
    page.select_option("select[name='rbac.anonymous_role']", "guest")
    page.click("form[action*='/authorization/enable'] button")
    assert page.input_value("select[name='rbac.anonymous_role']") == "guest"
    page.fill("#assign-user", ALICE)
    page.select_option("#assign-role", "member")
    page.click("form:has(input[value='assign']) button")
    assert f"Assigned member to {ALICE}" in flash(page)
    assert shop.query("SELECT r.name FROM user_roles ur JOIN roles r ON r.id = ur.role_id "
                      "JOIN app_users u ON u.id = ur.user_id WHERE u.email_address = :e",
                      {"e": ALICE}) == [("member",)]
    shot(page, "7-authorization")


def test_step8_deploy_and_use(page: Any, walk: dict[str, Any], console: ConsoleProcess) -> None:
    project, connection = walk["project"], walk["connection"]
    port = free_port()
    page.goto(f"/projects/{project}/deploy")
    page.fill(f"#port-{connection}", str(port))
    page.click(f"#deploy-{connection} .deploy-form button")
    assert f"live at http://127.0.0.1:{port}" in flash(page)
    card = page.locator(f"#deploy-{connection}")
    assert "/health 200 OK" in card.inner_text()
    command = card.locator(".copy-source").inner_text()
    assert f"--swain-project-id {project} --swain-connection-id {connection}" in command
    shot(page, "8-deploy")
    base = f"http://127.0.0.1:{port}"
    walk["base"] = base
    with httpx.Client(base_url=base, timeout=30) as api:
        assert api.get("/orders").status_code == 401
        assert api.get("/products").status_code == 200  # the public route
        login = api.post("/auth/login", json={"email": ALICE, "password": USER_PASSWORD})
        assert login.status_code == 200, login.text
        alice = {"Authorization": f"Bearer {login.json()['access_token']}"}
        paid = api.post("/orders/filter", headers=alice, json={
            "expressions": [{"field": "status", "operator": "eq", "value": "paid"}]})
        assert paid.status_code == 200, paid.text
        assert sorted(r["total"] for r in paid.json()["data"]) == ["10.00", "30.00"]
        assert {r["account_id"] for r in paid.json()["data"]} == {1}
        bob = api.post("/auth/login", json={"email": BOB, "password": USER_PASSWORD}).json()
        denied = api.get("/orders", headers={"Authorization": f"Bearer {bob['access_token']}"})
        assert denied.status_code == 403 and "orders.read" in denied.text


def test_a_failed_deploy_leaves_the_previous_one_running(page: Any, walk: dict[str, Any],
                                                          console: ConsoleProcess) -> None:
    project, connection = walk["project"], walk["connection"]
    with api_client(console.url) as http:
        before = http.get(f"/api/projects/{project}/connections/{connection}").json()
        closed = free_port()
        moved = http.put(f"/api/projects/{project}/connections/{connection}",
                         json={**{k: before[k] for k in ("stage", "dialect", "host", "database",
                                                          "username")}, "port": closed})
        assert moved.status_code == 200, moved.text
        page.goto(f"/projects/{project}/deploy")
        page.click(f"#deploy-{connection} .deploy-form button")
        failure = page.locator(f"#deploy-{connection} .result.error").first.inner_text()
        assert "Deploy failed" in failure and "previous deployment keeps serving" in failure
        assert "database is unreachable" in failure and "Connection refused" in failure
        assert httpx.get(walk["base"] + "/ready", timeout=10).status_code == 200
        restored = http.put(f"/api/projects/{project}/connections/{connection}",
                            json={**{k: before[k] for k in ("stage", "dialect", "host",
                                                             "database", "username", "port")}})
        assert restored.status_code == 200, restored.text


def test_deployments_survive_a_console_restart(walk: dict[str, Any],
                                               console: ConsoleProcess) -> None:
    console.stop()
    assert httpx.get(walk["base"] + "/health", timeout=10).status_code == 200
    console.start()
    with api_client(console.url) as http:
        state = http.get(f"/api/projects/{walk['project']}/connections/{walk['connection']}"
                         "/deployment").json()
    assert state["running"] is True and state["health"] == "200 OK"
    assert state["base_url"] == walk["base"]


def test_an_expired_session_returns_to_the_same_form(page: Any, walk: dict[str, Any],
                                                     console: ConsoleProcess) -> None:
    import sqlite3

    page.goto(f"/projects/{walk['project']}")
    page.fill("#description", "Written before the session ended")
    store = sqlite3.connect(console.data_dir / "console.db")
    with store:
        store.execute("UPDATE console_sessions SET expires_at = '2000-01-01 00:00:00'")
    store.close()
    page.click("form[action$='/rename'] button")
    page.wait_for_url(re.compile(r"/login\?expired=1"))
    assert "session has ended" in page.inner_text("main")
    page.fill("#email", ADMIN_EMAIL)
    page.fill("#password", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(rf"/projects/{walk['project']}$"))
    assert "restored below" in flash(page)
    assert page.input_value("#description") == "Written before the session ended"
    page.click("form[action$='/rename'] button")
    assert "Project saved" in flash(page)
    assert page.input_value("#description") == "Written before the session ended"


# -- steps 2, 3 and 8 on MariaDB and SQLite -------------------------------------------------------


@pytest.mark.parametrize("dialect", [d for d in ("mysql", "sqlite") if d in selected_dialects()])
def test_connect_sync_and_deploy(page: Any, console: ConsoleProcess, dialect: str) -> None:
    signed_in(page, console)
    with FreshDatabase(dialect) as db:
        db.run_script(shop_ddl(dialect))
        page.goto("/projects")
        page.fill("#name", f"Shop on {dialect}")
        page.click("form[action='/projects'] button[type=submit]")
        page.wait_for_url(re.compile(r"/projects/\d+/connections"))
        project = int(re.search(r"/projects/(\d+)/", page.url).group(1))  # type: ignore[union-attr]
        # step 2, given as one URL this time
        page.select_option("#stage", "staging")
        page.click("#form details summary")
        page.fill("#url", db.swain_url)
        page.click("#form button[type=submit]")
        page.wait_for_url(re.compile(r"connection=\d+"))
        engine = "MariaDB" if dialect == "mysql" else ""
        assert re.search(rf"connected: {dialect} \S*{engine}", flash(page)), flash(page)
        connection = int(re.search(r"connection=(\d+)", page.url).group(1))  # type: ignore[union-attr]
        # step 3
        page.click(f"#connection-{connection} form[action$='/sync'] button")
        assert "first snapshot: 12 tables" in flash(page)
        assert page.locator(".erd-edge").count() >= 9
        # step 8: auth is on and nothing is mapped, so the deploy says why it cannot start
        port = free_port()
        page.goto(f"/projects/{project}/deploy")
        page.fill(f"#port-{connection}", str(port))
        page.click(f"#deploy-{connection} .deploy-form button")
        failure = page.locator(f"#deploy-{connection} .result.error").first.inner_text()
        assert "auth.enabled" in failure, failure
        page.goto(f"/projects/{project}/auth?connection={connection}")
        page.uncheck("#general input[name='auth.enabled']")
        page.click("#general button.primary")
        page.goto(f"/projects/{project}/deploy")
        page.fill(f"#port-{connection}", str(port))
        page.click(f"#deploy-{connection} .deploy-form button")
        assert f"live at http://127.0.0.1:{port}" in flash(page)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as api:
            found = api.post("/orders/filter", json={"expressions": [
                {"field": "status", "operator": "eq", "value": "paid"}]})
            assert found.status_code == 200, found.text
            assert sorted(r["total"] for r in found.json()["data"]) == ["10.00", "30.00", "40.00"]
        page.click(f"#deploy-{connection} form[action$='/stop'] button")
        assert "stopped" in flash(page)
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)


def test_the_projects_page(page: Any) -> None:
    page.goto("/projects")
    rows = page.locator("table.list tbody tr")
    assert rows.count() >= 1
    assert "Acme Shop" in rows.first.inner_text() and "development" in rows.first.inner_text()
    shot(page, "1-projects", full=False)
