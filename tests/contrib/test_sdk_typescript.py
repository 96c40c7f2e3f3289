"""The generated TypeScript (axios) SDK is an npm package (``swain-api``, built by
``swain_cli gen``) that an application installs, type-checks against with ``tsc
--strict`` and, compiled, uses against a live server from node."""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

MAIN = textwrap.dedent("""
    import { Configuration, Products, ProductsApi } from "swain-api";

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
      // A row: its columns typed, other members (includes, aggregations) allowed.
      const row: Products = found.data.data[0];
      const sku: string | undefined = row.sku;
      // @ts-expect-error a typed column is no number
      const wrong: number = row.sku;
      const extra: unknown = row.aggregations?.anything;
      await api.deleteByIdProducts(id);
      let after = 200;
      try { await api.getByIdProducts(id); } catch (e: any) { after = e.response?.status ?? -1; }
      console.log(JSON.stringify({
        page: [page.data.page, page.data.data.length], sku: got.data.sku, price: got.data.price,
        found: found.data.data.map((row) => row.sku), count: count.data.count, after,
        typed: [sku, wrong === undefined, extra === undefined],
      }));
    }

    main().catch((e: any) => { console.error(e?.response?.data ?? e); process.exit(1); });
""")

TSCONFIG = {"compilerOptions": {"target": "ES2020", "module": "commonjs", "strict": True,
                                "esModuleInterop": True, "skipLibCheck": True,
                                "outDir": "dist", "types": ["node"]},
            "files": ["main.ts"]}


def test_typescript_sdk_type_checks_and_runs(live_demo: tuple[str, str], generate_sdk: Callable[..., Path],
                                             tmp_path: Path) -> None:
    npm, node = shutil.which("npm"), shutil.which("node")
    assert npm and node, "node and npm are required for the TypeScript SDK test"
    url, token = live_demo
    sdk = generate_sdk(url, "typescript")
    project = tmp_path / "project"
    project.mkdir()
    shutil.copytree(sdk, project / "sdk", symlinks=True)
    # swain_cli built the package: its declarations and compiled entry point are there.
    package = json.loads((project / "sdk" / "package.json").read_text())
    assert (package["name"], package["main"]) == ("swain-api", "./dist/index.js")
    assert (project / "sdk" / "dist" / "index.js").is_file()
    assert (project / "sdk" / "dist" / "index.d.ts").is_file()
    (project / "package.json").write_text('{"name": "sdk-check", "private": true}')
    subprocess.run([npm, "install", "--no-audit", "--no-fund", "--loglevel=error", "./sdk",
                    "typescript@5", "@types/node@20"], cwd=project, check=True, timeout=300)
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
    assert out["typed"] == ["TS-1", False, True]
