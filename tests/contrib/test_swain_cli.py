"""``swain_cli``: the command line's contract without the generator
(auth storage, refusals, the generator command it builds, doctor), and the
OpenAPI contract the generators rely on, checked on a live document."""

from __future__ import annotations

import dataclasses
import json
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from swain.contrib.swain_cli import cli, engine

_DDL = """
CREATE TABLE "Order Lines" (
    "Line ID" INTEGER PRIMARY KEY,
    "Class" VARCHAR(40) NOT NULL,
    "select" INTEGER,
    "mixedCase" VARCHAR(20) DEFAULT 'x'
);
CREATE TABLE "from" (
    id INTEGER PRIMARY KEY,
    "return" VARCHAR(20)
);
"""
DDL = {"default": _DDL, "mysql": _DDL.replace('"', "`").replace("`x`", "'x'")}

#: Generator warnings that are not about the document: always printed by the generator
#: (schema name, boolean option), or about names the test's tables pick on purpose.
GENERATOR_NOISE = ("Failed to get the schema name: null",
                   "The value (generator's option) must be either boolean or string",
                   "(reserved word) cannot be used as model name")

BODY_NAMES = {"filter": "filter_payload", "count": "filter_payload",
              "deleteByFilter": "filter_payload", "updateByFilter": "update_filter_payload"}


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No real keyring, a private config folder, no SWAIN_TOKEN."""
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("SWAIN_TOKEN", raising=False)
    return tmp_path


def test_auth_file_fallback_is_private_and_round_trips(isolated: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["auth", "status"]).exit_code == 1
    login = runner.invoke(cli, ["auth", "login", "--token", "tok-123456"])
    assert login.exit_code == 0, login.output
    assert "warning" in login.output.lower()
    stored = isolated / "swain_cli" / "credentials.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    status = runner.invoke(cli, ["auth", "status"])
    assert status.exit_code == 0 and "3456" in status.output and "tok-123456" not in status.output
    assert runner.invoke(cli, ["auth", "login", "--stdin"], input="from-stdin\n").exit_code == 0
    assert "ndin" in runner.invoke(cli, ["auth", "status"]).output
    assert runner.invoke(cli, ["auth", "logout"]).exit_code == 0
    assert not stored.exists()
    assert runner.invoke(cli, ["auth", "status"]).exit_code == 1
    env = runner.invoke(cli, ["auth", "status"], env={"SWAIN_TOKEN": "env-token-9999"})
    assert env.exit_code == 0 and "SWAIN_TOKEN" in env.output


def test_interactive_refuses_without_a_terminal() -> None:
    result = CliRunner().invoke(cli, ["interactive"])
    assert result.exit_code != 0
    assert "terminal" in result.output and "swain_cli gen" in result.output


def test_gen_needs_exactly_one_source(tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text("{}")
    runner = CliRunner()
    assert runner.invoke(cli, ["gen", "-l", "python"]).exit_code == 2
    both = runner.invoke(cli, ["gen", "-i", str(spec), "--swain-base", "http://x", "-l", "python"])
    assert both.exit_code == 2 and "exactly one" in both.output
    bad = runner.invoke(cli, ["gen", "-i", str(spec), "-l", "python", "-p", "novalue"])
    assert bad.exit_code == 2


def test_generator_command_line(tmp_path: Path) -> None:
    job = engine.Generation(spec=tmp_path / "s.json", language="typescript",
                            output=tmp_path / "out", properties=("packageName=x", "a=b"),
                            config=tmp_path / "c.yaml", generator_args=("--strict-spec=true",),
                            java_opts=("-Xmx2g",), skip_validate=True)
    jar = engine.jar_path()
    assert jar.is_file() and jar.suffix == ".jar"
    args = job.command("java", jar)
    assert args[:4] == ["java", "-Xmx2g", "-jar", str(jar)]
    assert args[args.index("-g") + 1] == "typescript-axios"
    assert f"--global-property={engine.NO_STUBS}" in args
    assert "apiTests=false" in engine.NO_STUBS and "modelDocs=false" in engine.NO_STUBS
    # swain_cli's package name unless given: npmName (an npm package), and its version
    assert "--additional-properties=packageName=x,a=b,npmName=swain-api,npmVersion=1.0.0" in args
    assert "--skip-validate-spec" in args and args[-1] == "--strict-spec=true"
    # TypeScript's own Error: the component is named ModelError up front, before the
    # user's arguments so that theirs win.
    assert args.index("--model-name-mappings=Error=ModelError") < args.index("--strict-spec=true")
    python = engine.Generation(spec=tmp_path / "s.json", language="python", output=tmp_path,
                               properties=("packageVersion=2.0.0",),
                               template_dir=tmp_path / "templates")
    python_args = python.command("java", jar)
    assert not any("model-name-mappings" in arg for arg in python_args)
    assert "--additional-properties=packageVersion=2.0.0,packageName=swain_api" in python_args
    assert python_args[python_args.index("-t") + 1] == str(tmp_path / "templates")
    # The user's own templates win over swain_cli's.
    own = dataclasses.replace(python, generator_args=("-t", "mine"))
    assert own.command("java", jar)[-2:] == ["-t", "mine"]
    assert own.command("java", jar).count("-t") == 1
    assert engine.engine_version() == engine.ENGINE_VERSION


def test_doctor_reports_java_and_generator(isolated: Path) -> None:
    result = CliRunner().invoke(cli, ["doctor"])
    assert result.exit_code == 0, result.output
    assert engine.ENGINE_VERSION in result.output and "java" in result.output
    assert "npm" in result.output


def test_document_contract_for_unusual_names(client: httpx.Client) -> None:
    document = client.get("/openapi.json").json()
    tags = {tag["name"]: tag["x-swain-model"] for tag in document["tags"]}
    assert {"Order Lines", "from"} <= set(tags)
    ops = {op["operationId"]: op for path in document["paths"].values()
           for op in path.values() if isinstance(op, dict) and "operationId" in op}
    for table, model in tags.items():
        if table not in ("Order Lines", "from"):
            continue
        for name in ("list", "create", "getById", "updateById", "deleteById", "filter",
                     "count", "countAll", "bulkCreate", "bulkUpdate", "updateByFilter",
                     "deleteByFilter"):
            op = ops[f"{name}{model}"]
            assert op["tags"] == [table]
            if name in BODY_NAMES:
                assert op["x-codegen-request-body-name"] == BODY_NAMES[name]
        schemas = document["components"]["schemas"]
        assert schemas[f"{model}Update"].get("required", []) == []
    lines = schemas_of(document, tags["Order Lines"])
    required = set(lines["create"]["required"])
    assert "Class" in required and not required & {"select", "mixedCase"}
    assert lines["row"]["properties"]["select"].get("nullable") is True
    assert lines["row"]["properties"]["Line ID"]["type"] == "integer"
    assert "FilterRequest" in document["components"]["schemas"]


def schemas_of(document: dict, model: str) -> dict[str, dict]:
    schemas = document["components"]["schemas"]
    return {"row": schemas[model], "create": schemas[f"{model}Create"]}


@pytest.mark.slow
def test_generation_from_unusual_names(server: Any, tmp_path: Path) -> None:
    """Both generators accept the live document of spaces, mixed case and reserved words."""
    result = CliRunner().invoke(cli, ["gen", "--swain-base", server.url, "-l", "python",
                                      "-l", "typescript", "-o", str(tmp_path),
                                      "-p", "packageName=odd_api", "--verbose"])
    assert result.exit_code == 0, result.output
    assert "[main] ERROR" not in result.output
    # The generators' log: every component they meet is named (no inline model of
    # Error or the bulk results) and typed (no map of undefined type), and TypeScript
    # is not told again and again that Error is one of its own names.
    warnings = [line for line in result.output.splitlines()
                if " WARN " in line and not any(noise in line for noise in GENERATOR_NOISE)]
    assert warnings == []
    # Only the OAuth2 password form body stays inline (a form the clients skip).
    inline = re.findall(r"Inline schema created as (\S+?)\.", result.output)
    assert set(inline) <= {"authToken_request"}, inline
    package = tmp_path / "python" / "odd_api"
    check = subprocess.run([sys.executable, "-m", "compileall", "-q", str(package)],
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    apis = (package / "__init__.py").read_text(encoding="utf-8")
    assert "OrderLinesApi" in apis and "FromApi" in apis
    lines = (package / "api" / "order_lines_api.py").read_text(encoding="utf-8")
    assert "def filter_order_lines(" in lines and "filter_payload" in lines
    assert (tmp_path / "typescript" / "api.ts").is_file()


@pytest.mark.slow
def test_typescript_package_without_npm_or_with_skip_build(spec_file: Path, tmp_path: Path) -> None:
    """The TypeScript SDK is an npm package either way; it is built only where npm
    is found and --skip-build is not given (the build itself: test_sdk_typescript)."""
    found = engine.find_java()
    assert found is not None
    java_home = str(Path(found[0]).resolve().parent.parent)
    empty = tmp_path / "no-npm"
    empty.mkdir()
    runner = CliRunner()
    without = runner.invoke(cli, ["gen", "-i", str(spec_file), "-l", "typescript",
                                  "-o", str(tmp_path / "a")],
                            env={"PATH": str(empty), "JAVA_HOME": java_home})
    assert without.exit_code == 0, without.output
    assert "npm not found" in without.output
    skipped = runner.invoke(cli, ["gen", "-i", str(spec_file), "-l", "typescript", "--skip-build",
                                  "-o", str(tmp_path / "b")])
    assert skipped.exit_code == 0, skipped.output
    assert "npm" not in skipped.output
    for folder in (tmp_path / "a" / "typescript", tmp_path / "b" / "typescript"):
        package = json.loads((folder / "package.json").read_text(encoding="utf-8"))
        assert (package["name"], package["version"]) == ("swain-api", "1.0.0")
        assert package["scripts"]["prepare"] == "npm run build"
        assert (folder / "tsconfig.json").is_file() and not (folder / "dist").exists()
