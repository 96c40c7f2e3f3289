"""Swagger UI: served from local assets, public, rendered by a real browser, and
its "Try it out" reaching this server, on SQLite, PostgreSQL and MariaDB.

The browser is Debian's ``chromium`` (``apt-get install chromium``), driven
headless over the DevTools protocol.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import httpx
import pytest
from aiohttp import web

from swain.contrib.testing import LiveServer, free_port
from swain.core import Config, Identity, create_app, hookimpl, load_config

DDL = {
    "default": """
CREATE TABLE widgets (id INTEGER PRIMARY KEY, name VARCHAR(40) NOT NULL, colour VARCHAR(10));
CREATE TABLE "order items" (order_id INTEGER NOT NULL, line_no INTEGER NOT NULL,
    qty INTEGER NOT NULL, PRIMARY KEY (order_id, line_no));
INSERT INTO widgets (id, name, colour) VALUES (1, 'sprocket', 'red'), (2, 'gear', 'blue'),
    (3, 'cog', 'red');
INSERT INTO "order items" (order_id, line_no, qty) VALUES (7, 1, 3), (7, 2, 5)
""",
}
DDL["mysql"] = DDL["default"].replace('"', "`")

SWAIN_CONFIG = {"project": {"name": "widget shop"}, "auth": {"enabled": True}}
API_KEY = "test-key-123"


class HeaderKey:
    """A minimal auth plugin: ``X-Test-Key`` authenticates; the document says so."""

    name = "test_key"

    async def authenticate(self, request: web.Request) -> Identity | None:
        if request.headers.get("X-Test-Key") == API_KEY:
            return Identity(user_id=1, provider=self.name)
        return None

    @hookimpl
    def swain_auth_providers(self, config: Config) -> list[HeaderKey]:
        return [self]

    @hookimpl
    def swain_spec_contributions(self, spec: Any, schema: Any, config: Config) -> None:
        spec.components.security_scheme("testKey", {"type": "apiKey", "in": "header",
                                                    "name": "X-Test-Key"})
        spec.options["security"] = [{"testKey": []}]


@pytest.fixture(scope="module")
def server(config_path: Path) -> Iterator[LiveServer]:
    config, pm = load_config(config_path, "development", environ={}, plugins=[HeaderKey()])
    with LiveServer(create_app(config, pm)) as live:
        yield live


def _local_assets(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', html)


def test_index_and_assets_are_local_and_public(client: httpx.Client) -> None:
    # Auth is on and no credential is sent: the table API refuses, the docs do not.
    assert client.get("/widgets").status_code == 401
    index = client.get("/swagger/index.html")
    assert index.status_code == 200
    assert index.headers["content-type"].startswith("text/html")
    assert "widget shop" in index.text
    assets = _local_assets(index.text)
    assert {"./swagger-ui-bundle.js", "./swagger-ui-standalone-preset.js",
            "./swagger-initializer.js", "./swagger-ui.css"} <= set(assets)
    expected = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
    for asset in assets:
        assert asset.startswith("./"), asset
        response = client.get(f"/swagger/{asset[2:]}")
        assert response.status_code == 200, asset
        suffix = Path(asset).suffix
        assert response.headers["content-type"].startswith(expected[suffix]), asset
        assert len(response.content) > 0
    initializer = client.get("/swagger/swagger-initializer.js").text
    assert 'url: "./doc.json"' in initializer
    assert "tryItOutEnabled: true" in initializer and "persistAuthorization: true" in initializer
    for text in (index.text, initializer):
        assert not re.search(r"https?://", text)
    assert client.get("/swagger/doc.json").status_code == 200
    assert client.get("/openapi.yaml").status_code == 200
    bundle = client.get("/swagger/swagger-ui-bundle.js")
    assert "SwaggerUIBundle" in bundle.text


def test_redirects_and_unknown_files(client: httpx.Client) -> None:
    for path in ("/swagger", "/swagger/"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 302
        assert response.headers["location"] == "/swagger/index.html"
    # Not an asset: falls through to the table API, where "swagger" is a reserved name.
    missing = client.get("/swagger/nope.js", headers={"X-Test-Key": API_KEY})
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    sneaky = client.get("/swagger/..%2f..%2fetc%2fpasswd", headers={"X-Test-Key": API_KEY})
    assert sneaky.status_code == 404
    assert "root:" not in sneaky.text


# -- a real browser ----------------------------------------------------------------------


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "Debian's chromium is required: apt-get install -y chromium"
    return found


def _chromium_args(profile: str) -> list[str]:
    return [_chromium(), "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", "--disable-dev-shm-usage", f"--user-data-dir={profile}"]


def test_browser_renders_the_operations(server: LiveServer) -> None:
    with tempfile.TemporaryDirectory(prefix="swain-chromium-", ignore_cleanup_errors=True) as profile:
        result = subprocess.run(
            [*_chromium_args(profile), "--virtual-time-budget=15000", "--dump-dom",
             f"{server.url}/swagger/index.html"], capture_output=True, text=True, timeout=120)
    dom = result.stdout
    assert result.returncode == 0, result.stderr[-2000:]
    for marker in ("listWidgets", "createWidgets", "getByIdWidgets", "updateByIdWidgets",
                   "deleteByIdWidgets", "countAllWidgets", "listOrderItems",
                   "getByIdOrderItems", 'class="opblock-tag', "widget shop"):
        assert marker in dom, marker
    assert "/order%20items/{id}" in dom or "/order items/{id}" in dom


class DevTools:
    """Just enough of the Chrome DevTools protocol: commands and collected events."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        ident = self.next_id
        await self.ws.send_json({"id": ident, "method": method, "params": params})
        while True:
            message = json.loads((await self.ws.receive(timeout=30)).data)
            if message.get("id") == ident:
                assert "error" not in message, message
                return dict(message["result"])
            self.events.append(message)

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, awaitPromise=True,
                                 returnByValue=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 30) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = await self.evaluate(expression)
            if value:
                return value
            await asyncio.sleep(0.2)
        raise AssertionError(f"timed out waiting for {expression}")


# Fills a React-controlled input the way typing would, then lets Swagger UI react.
_HELPERS = """
window.__fill = function (input, value) {
  const proto = input.tagName === "SELECT" ? HTMLSelectElement.prototype
                                           : HTMLInputElement.prototype;
  Object.getOwnPropertyDescriptor(proto, "value").set.call(input, value);
  input.dispatchEvent(new Event("input", {bubbles: true}));
  input.dispatchEvent(new Event("change", {bubbles: true}));
};
window.__op = function (id) {
  return [...document.querySelectorAll(".opblock")]
    .find(b => b.querySelector(".opblock-summary-operation-id")?.textContent.trim() === id);
};
true
"""


async def _try_it_out(port: int, page_url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http:
        deadline = time.monotonic() + 30
        while True:
            try:
                async with http.get(f"http://127.0.0.1:{port}/json/list") as response:
                    targets = await response.json()
                page = next(t for t in targets if t["type"] == "page")
                break
            except (aiohttp.ClientError, StopIteration):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
        async with http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            tools = DevTools(ws)
            await tools.send("Network.enable")
            await tools.send("Page.enable")
            await tools.send("Page.navigate", url=page_url)
            await tools.wait_for("document.querySelectorAll('.opblock').length > 0")
            await tools.evaluate(_HELPERS)
            # Authorize the way the dialog does, then reload: the key must survive.
            await tools.evaluate("document.querySelector('.auth-wrapper .authorize').click()")
            await tools.wait_for("!!document.querySelector('.modal-ux input')")
            await tools.evaluate(f"__fill(document.querySelector('.modal-ux input'), '{API_KEY}')")
            await tools.evaluate("""[...document.querySelectorAll('.modal-ux button')]
                .find(b => b.textContent.trim() === 'Authorize').click()""")
            await tools.wait_for("""[...document.querySelectorAll('.modal-ux button')]
                .some(b => b.textContent.trim() === 'Logout')""")
            await tools.send("Page.reload")
            await tools.wait_for("document.querySelectorAll('.opblock').length > 0")
            await tools.evaluate(_HELPERS)
            persisted = await tools.evaluate("localStorage.getItem('authorized') || ''")
            results: dict[str, Any] = {"persisted": persisted}
            results["get"] = await _execute(tools, "getByIdWidgets", {"id": "2"})
            results["list"] = await _execute(tools, "listWidgets", {"colour": "red"})
            results["composite"] = await _execute(tools, "getByIdOrderItems",
                                                  {"id": ["7", "2"]})
            results["urls"] = [e["params"]["request"]["url"] for e in tools.events
                               if e.get("method") == "Network.requestWillBeSent"]
            return results


async def _execute(tools: DevTools, operation_id: str, params: dict[str, Any]) -> dict[str, Any]:
    """Open an operation, fill its parameters, press Execute, read the live response."""
    await tools.evaluate(f"""(() => {{
        const block = __op({json.dumps(operation_id)});
        if (!block.classList.contains("is-open")) {{
            block.querySelector(".opblock-control-arrow").click();
        }}
        return true; }})()""")
    await tools.wait_for(f"!!__op({json.dumps(operation_id)}).querySelector('.execute')")
    for name, value in params.items():
        values = value if isinstance(value, list) else [value]
        if isinstance(value, list):
            # Array parameters start empty: add one row per item first.
            for _ in values:
                await tools.evaluate(f"""(() => {{
                    const row = __op({json.dumps(operation_id)})
                        .querySelector('tr[data-param-name={json.dumps(name)}]');
                    const add = [...row.querySelectorAll('button')]
                        .find(b => /add/i.test(b.textContent));
                    add.click(); return true; }})()""")
        await tools.wait_for(f"""__op({json.dumps(operation_id)})
            .querySelectorAll('tr[data-param-name={json.dumps(name)}] input').length
            >= {len(values)}""")
        inputs = (f"[...__op({json.dumps(operation_id)})"
                  f".querySelectorAll('tr[data-param-name={json.dumps(name)}] input')]")
        # Swagger UI debounces each input (350 ms) before the value reaches its state,
        # and an array item rebuilt from stale state can lose a sibling's value: fill one
        # at a time, let it settle, and fill again whatever did not stick.
        for _ in range(3):
            current = await tools.evaluate(f"{inputs}.map(i => i.value)")
            if current[:len(values)] == values:
                break
            for i, item in enumerate(values):
                if current[i] != item:
                    await tools.evaluate(f"__fill({inputs}[{i}], {json.dumps(item)})")
                    await asyncio.sleep(1)
        assert (await tools.evaluate(f"{inputs}.map(i => i.value)"))[:len(values)] == values
    await tools.evaluate(f"__op({json.dumps(operation_id)}).querySelector('.execute').click()")
    status = await tools.wait_for(f"""(() => {{
        const cell = __op({json.dumps(operation_id)})
            .querySelector('.live-responses-table tr.response .response-col_status');
        return cell ? cell.textContent.trim() : null; }})()""")
    body = await tools.evaluate(f"""(() => {{
        const code = __op({json.dumps(operation_id)})
            .querySelector('.live-responses-table tr.response .response-col_description pre');
        return code ? code.textContent : null; }})()""")
    url = await tools.evaluate(f"""(() => {{
        const pre = __op({json.dumps(operation_id)}).querySelector('.request-url pre');
        return pre ? pre.textContent.trim() : null; }})()""")
    return {"status": status, "body": body, "url": url}


def test_try_it_out_calls_this_server(server: LiveServer) -> None:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="swain-chromium-", ignore_cleanup_errors=True) as profile:
        browser = subprocess.Popen([*_chromium_args(profile), f"--remote-debugging-port={port}",
                                    "about:blank"], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        try:
            results = asyncio.run(asyncio.wait_for(
                _try_it_out(port, f"{server.url}/swagger/index.html"), timeout=120))
        finally:
            browser.terminate()
            browser.wait(timeout=30)
    assert "testKey" in results["persisted"]
    get = results["get"]
    assert get["status"] == "200", get
    assert get["url"] == f"{server.url}/widgets/2"
    assert json.loads(get["body"]) == {"id": 2, "name": "gear", "colour": "blue"}
    listed = results["list"]
    assert listed["status"] == "200", listed
    assert urlsplit(listed["url"]).path == "/widgets"
    assert [r["name"] for r in json.loads(listed["body"])["data"]] == ["sprocket", "cog"]
    composite = results["composite"]
    assert composite["status"] == "200", composite
    assert composite["url"] == f"{server.url}/order%20items/7,2"
    assert json.loads(composite["body"]) == {"order_id": 7, "line_no": 2, "qty": 5}
    # Everything the page loaded, and every call it made, went to this server.
    hosts = {urlsplit(u).netloc for u in results["urls"] if u.startswith("http")}
    assert hosts == {f"127.0.0.1:{server.port}"}, hosts
