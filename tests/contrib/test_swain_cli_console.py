"""swain_cli against a swain console: ``auth login`` signs in with a
username and password, ``interactive`` lists the user's projects and
connections from the console as its walkthrough shows, and ``gen
--swain-project-id --swain-connection-id`` generates an SDK from the project's
dynamic swagger document."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins"))

from console_helpers import ADMIN_EMAIL, ADMIN_PASSWORD, api_client, console, shop_ddl
from test_swain_cli_interactive import DOWN, ENTER, SWAIN_CLI, Terminal

from swain.contrib.swain_cli import cli
from swain.contrib.testing import FreshDatabase
from swain.contrib.testing.console import ConsoleProcess

__all__ = ["console"]


@pytest.fixture(scope="module")
def project(console: ConsoleProcess) -> Iterator[dict[str, Any]]:
    with FreshDatabase("sqlite") as db:
        db.run_script(shop_ddl("sqlite"))
        with api_client(console.url) as http:
            made = http.post("/api/projects", json={"name": "Customer API"}).json()
            conn = http.post(f"/api/projects/{made['id']}/connections",
                             json={"stage": "production", "url": db.swain_url}).json()
            assert http.post(f"/api/projects/{made['id']}/connections/{conn['id']}/sync"
                             ).status_code == 200
        yield {"id": made["id"], "connection": conn["id"]}


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No real keyring, a private config folder, no token or console address set."""
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("SWAIN_TOKEN", raising=False)
    monkeypatch.delenv("SWAIN_BASE", raising=False)
    return tmp_path


def test_auth_login_signs_in_to_the_console(isolated: Path, console: ConsoleProcess,
                                            project: dict[str, Any]) -> None:
    runner = CliRunner()
    wrong = runner.invoke(cli, ["auth", "login", "--swain-base", console.url, "--username",
                                ADMIN_EMAIL, "--password-stdin"], input="wrong password\n")
    assert wrong.exit_code == 1 and "wrong email or password" in wrong.output
    done = runner.invoke(cli, ["auth", "login", "--swain-base", console.url],
                         input=f"{ADMIN_EMAIL}\n{ADMIN_PASSWORD}\n")
    assert done.exit_code == 0, done.output
    stored = isolated / "swain_cli" / "credentials.json"
    assert f"[swain_cli] stored access token (foun...st) in {stored}" in done.output
    assert ADMIN_PASSWORD not in stored.read_text()
    assert runner.invoke(cli, ["auth", "status"]).exit_code == 0
    # gen then finds the console by itself; a bad connection id is the console's 404
    missing = runner.invoke(cli, ["gen", "--swain-project-id", str(project["id"]),
                                  "--swain-connection-id", "999999", "-l", "python",
                                  "-o", str(isolated / "out")])
    assert missing.exit_code == 1 and "answered 404" in missing.output
    half = runner.invoke(cli, ["gen", "--swain-project-id", str(project["id"]), "-l", "python"])
    assert half.exit_code == 2 and "--swain-connection-id" in half.output


def test_interactive_walkthrough(tmp_path: Path, console: ConsoleProcess,
                                 project: dict[str, Any]) -> None:
    env = {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
           "XDG_CONFIG_HOME": str(tmp_path), "SWAIN_BASE": console.url}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    os.environ.pop("SWAIN_TOKEN", None)
    try:
        term = Terminal([SWAIN_CLI, "interactive"], cwd=tmp_path)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    try:
        term.expect(r"\[swain_cli\] interactive SDK generation wizard")
        term.expect(r"\[swain_cli\] press Ctrl\+C at any time to cancel")
        term.expect(r"Where is the OpenAPI document\?")
        term.send(DOWN + DOWN + ENTER)
        term.expect(r"\[swain_cli\] no authentication token configured\.")
        term.expect(r"Sign in before continuing\?")
        term.send(ENTER)
        term.expect(r"Username or email:")
        term.send(ADMIN_EMAIL + ENTER)
        term.expect(r"Password:")
        term.send(ADMIN_PASSWORD + ENTER)
        term.expect(r"\[swain_cli\] stored access token \(foun\.\.\.st\)")
        term.expect(r"Select a project")
        term.expect(rf"Customer API \(#{project['id']}\)")
        term.send(ENTER)
        term.expect(r"Select a connection")
        term.expect(rf"#{project['connection']} - production \(sqlite, database=test\.db\)")
        term.send(ENTER)
        term.expect(r"Output directory \(sdks\):")
        term.send(ENTER)
        term.expect(r"Target languages \(comma separated, e\.g\. python,typescript\):")
        term.send(ENTER)
        pid, cid = project["id"], project["connection"]
        term.expect(r"\[swain_cli\] configuration preview")
        term.expect(rf"\[swain_cli\] swain base: {re.escape(console.url)}")
        term.expect(rf"\[swain_cli\] project: Customer API \(#{pid}\)")
        term.expect(re.escape(f"[swain_cli] dynamic swagger: {console.url}/api/dynamic_swagger"
                              f"?project={pid}&connection={cid}"))
        term.expect(re.escape(f"[swain_cli] equivalent command: swain_cli gen --swain-project-id "
                              f"{pid} --swain-connection-id {cid} -o ./sdks -l python "
                              "--generator-arg --global-property=apiDocs=false,apiTests=false,"
                              "modelDocs=false,modelTests=false"))
        term.expect(r"Run generation now\?")
        term.send("n")
        term.expect(r"Not run\.")
        assert term.finish() == 0
    finally:
        term.close()


@pytest.mark.slow
def test_gen_from_the_console(isolated: Path, console: ConsoleProcess,
                              project: dict[str, Any]) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["auth", "login", "--swain-base", console.url, "--username",
                               ADMIN_EMAIL, "--password-stdin"],
                         input=ADMIN_PASSWORD + "\n").exit_code == 0
    out = isolated / "sdks"
    result = runner.invoke(cli, ["gen", "--swain-project-id", str(project["id"]),
                                 "--swain-connection-id", str(project["connection"]),
                                 "-l", "python", "-o", str(out), "-p", "packageName=shop_api"])
    assert result.exit_code == 0, result.output
    package = out / "python" / "shop_api"
    orders = (package / "api" / "orders_api.py").read_text()
    assert "def filter_orders(" in orders and "def list_orders(" in orders
    assert (package / "models" / "app_users.py").is_file()
    # the document it was made from is the console's, for that project and stage
    with api_client(console.url) as http:
        document = http.get("/api/dynamic_swagger", params={
            "project": project["id"], "connection": project["connection"]}).json()
    assert document["info"]["title"] == "Customer API"
    assert httpx.get(console.url + "/api/dynamic_swagger").status_code == 401
