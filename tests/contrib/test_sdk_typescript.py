"""The generated TypeScript (axios) SDK type-checks with ``tsc --strict`` and,
compiled, works against a live server from node (SPEC §13)."""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from swain.contrib.demo import DEMO_EMAIL, DEMO_PASSWORD, prepare
from swain.contrib.swain_cli import cli
from swain.contrib.testing import LiveServer
from swain.core import create_app, load_config

pytestmark = pytest.mark.slow

MAIN = textwrap.dedent("""
    import { Configuration, ProductsApi } from "./sdk";

    async function main(): Promise<void> {
      const [url, token] = process.argv.slice(2);
      const api = new ProductsApi(new Configuration({ basePath: url, accessToken: token }));
      const page = await api.listProducts(2, 3);
      const made = await api.createProducts({ sku: "TS-1", name: "from ts", price: "3.25" });
      const id: number = made.data.id as number;
      const got = await api.getByIdProducts(id);
      const found = await api.filterProducts(
        { expressions: [{ field: "sku", operator: "eq", value: "TS-1" }] }, 1, 10);
      const count = await api.countProducts(
        { expressions: [{ field: "sku", operator: "eq", value: "TS-1" }] });
      await api.deleteByIdProducts(id);
      let after = 200;
      try { await api.getByIdProducts(id); } catch (e: any) { after = e.response?.status ?? -1; }
      console.log(JSON.stringify({
        page: [page.data.page, page.data.data.length], sku: got.data.sku, price: got.data.price,
        found: found.data.data.map((row) => row.sku), count: count.data.count, after,
      }));
    }

    main().catch((e: any) => { console.error(e?.response?.data ?? e); process.exit(1); });
""")

TSCONFIG = {"compilerOptions": {"target": "ES2020", "module": "commonjs", "strict": True,
                                "esModuleInterop": True, "skipLibCheck": True,
                                "outDir": "dist", "types": ["node"]},
            "files": ["main.ts"]}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    folder = tmp_path_factory.mktemp("demo")
    config, pm = load_config(prepare(folder), "development", environ={})
    with LiveServer(create_app(config, pm)) as server:
        login = httpx.post(server.url + "/auth/login", timeout=30,
                           json={"email": DEMO_EMAIL, "password": DEMO_PASSWORD})
        assert login.status_code == 200, login.text
        yield server.url, login.json()["access_token"]


def test_typescript_sdk_type_checks_and_runs(live: tuple[str, str], tmp_path: Path) -> None:
    npm, node = shutil.which("npm"), shutil.which("node")
    assert npm and node, "node and npm are required for the TypeScript SDK test"
    url, token = live
    result = CliRunner().invoke(cli, ["gen", "--swain-base", url, "-l", "typescript",
                                      "-o", str(tmp_path / "sdks")])
    assert result.exit_code == 0, result.output
    project = tmp_path / "project"
    project.mkdir()
    shutil.copytree(tmp_path / "sdks" / "typescript", project / "sdk")
    assert (project / "sdk" / "api.ts").is_file()
    (project / "package.json").write_text('{"name": "sdk-check", "private": true}')
    subprocess.run([npm, "install", "--no-audit", "--no-fund", "--loglevel=error",
                    "typescript@5", "axios@1", "@types/node@20"], cwd=project, check=True,
                   timeout=300)
    (project / "main.ts").write_text(MAIN, encoding="utf-8")
    (project / "tsconfig.json").write_text(json.dumps(TSCONFIG), encoding="utf-8")
    tsc = subprocess.run([node, "node_modules/typescript/bin/tsc", "-p", "."], cwd=project,
                         capture_output=True, text=True, timeout=300)
    assert tsc.returncode == 0, tsc.stdout + tsc.stderr
    run = subprocess.run([node, "dist/main.js", url, token], cwd=project, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["page"] == [2, 3]
    assert out["sku"] == "TS-1" and out["price"] == "3.25"
    assert out["found"] == ["TS-1"] and out["count"] == 1
    assert out["after"] == 404
