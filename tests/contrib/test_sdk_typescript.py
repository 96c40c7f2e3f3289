"""The generated TypeScript (axios) SDK type-checks with ``tsc --strict`` and,
compiled, works against a live server from node."""

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


def test_typescript_sdk_type_checks_and_runs(live_demo: tuple[str, str], generate_sdk: Callable[..., Path],
                                             tmp_path: Path) -> None:
    npm, node = shutil.which("npm"), shutil.which("node")
    assert npm and node, "node and npm are required for the TypeScript SDK test"
    url, token = live_demo
    sdk = generate_sdk(url, "typescript")
    project = tmp_path / "project"
    project.mkdir()
    shutil.copytree(sdk, project / "sdk")
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
