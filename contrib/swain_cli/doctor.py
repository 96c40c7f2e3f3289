"""``swain_cli doctor``: what the generator needs, and whether it is here."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from . import auth, engine, sdk


def checks() -> list[tuple[str, bool, str]]:
    """(name, ok, detail) for Java, the engine, the JAR, npm, caches and the keyring."""
    rows: list[tuple[str, bool, str]] = []
    found = engine.find_java()
    version = engine.java_version(found[0]) if found else None
    if found is None:
        java_detail = "not found: swain_cli engine install-jre"
    elif version is None:
        java_detail = f"{found[0]} (from {found[1]}) does not run"
    else:
        java_detail = f"{version} from {found[1]}: {found[0]}"
    rows.append(("java", version is not None, java_detail))
    installed = engine.engine_version()
    rows.append(("generator", installed == engine.ENGINE_VERSION,
                 f"openapi-generator-cli {installed or 'missing'} "
                 f"(pinned {engine.ENGINE_VERSION})"))
    try:
        jar = engine.jar_path()
        rows.append(("jar", jar.is_file(), str(jar)))
    except engine.EngineError as exc:
        rows.append(("jar", False, str(exc)))
    npm = sdk.npm_executable()
    rows.append(("npm", True, f"{npm} (builds TypeScript SDKs)" if npm else
                 "not found: TypeScript SDKs are built when an application installs them"))
    cache = Path.home() / ".m2"
    rows.append(("cache", True, f"{cache} ({'present' if cache.exists() else 'absent'})"))
    backend = auth.keyring_backend()
    rows.append(("keyring", True,
                 backend or f"none: tokens go to {auth.credentials_file()} (0600)"))
    return rows


def report(console: Console) -> bool:
    """Print the checks as a table; True when everything required is fine."""
    table = Table(title="swain_cli doctor")
    for column in ("check", "status", "detail"):
        table.add_column(column)
    rows = checks()
    for name, ok, detail in rows:
        table.add_row(name, "[green]ok[/]" if ok else "[red]missing[/]", detail)
    console.print(table)
    return all(ok for _, ok, _ in rows)
