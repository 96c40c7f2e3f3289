"""The documentation tells the truth (as Datasette's ``test_docs.py``): every hook is
documented in ``docs/plugins.md`` with its real signature and an example that runs,
every setting in ``docs/configuration.md``, every part of the dialect contract in
``docs/dialects.md``, and every docs page the code or the docs point at exists."""

from __future__ import annotations

import re
import types
from pathlib import Path

import httpx
import pytest

from swain.contrib.testing import LiveServer, write_config
from swain.core import Dialect, create_app, load_config
from swain.core.config import CONNECTION_SETTINGS, CORE_SECTIONS, merge_sections
from swain.core.dialect import DBConnection
from swain.core.plugins import create_plugin_manager

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PLUGINS_MD = (DOCS / "plugins.md").read_text(encoding="utf-8")
HEADING = re.compile(r"^### `(swain_\w+)\((.*?)\)`$", re.M)


def _specs() -> dict[str, list[str]]:
    """Every hookspec of core and the built-in plugins, with its argument names."""
    pm = create_plugin_manager(disable=["example"])
    return {name: list(caller.spec.argnames) for name, caller in vars(pm.hook).items()
            if getattr(caller, "spec", None) is not None}


def _sections() -> dict[str, str]:
    """Hook name → the text of its section in docs/plugins.md."""
    found = {}
    for match in HEADING.finditer(PLUGINS_MD):
        following = re.search(r"^##+ ", PLUGINS_MD[match.end():], re.M)
        end = match.end() + following.start() if following else len(PLUGINS_MD)
        found[match.group(1)] = PLUGINS_MD[match.start():end]
    return found


def test_every_hook_is_documented_with_its_signature() -> None:
    documented = {m.group(1): [a.strip() for a in m.group(2).split(",") if a.strip()]
                  for m in HEADING.finditer(PLUGINS_MD)}
    assert documented == _specs()


def _example(hook: str) -> str:
    section = _sections()[hook]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert blocks, f"{hook}: no example"
    return str(blocks[0])


def _load_example(hook: str) -> types.ModuleType:
    module = types.ModuleType(f"docs_example_{hook}")
    exec(compile(_example(hook), f"docs/plugins.md ({hook})", "exec"), module.__dict__)
    return module


@pytest.mark.parametrize("hook", sorted(_specs()))
def test_each_example_is_a_valid_plugin_of_its_hook(hook: str) -> None:
    module = _load_example(hook)
    assert callable(getattr(module, hook, None)), f"{hook}: the example does not implement it"
    pm = create_plugin_manager(plugins=[module])
    assert module in [impl.plugin for impl in getattr(pm.hook, hook).get_hookimpls()]


def test_the_examples_serve_together(tmp_path: Path) -> None:
    """Every example registered in one app, which starts, serves and stops."""
    modules = [_load_example(hook) for hook in sorted(_specs())]
    path = write_config(tmp_path, f"sqlite:///{tmp_path / 'docs.db'}")
    config, pm = load_config(path, environ={}, plugins=modules)
    with LiveServer(create_app(config, pm)) as live:
        assert httpx.get(f"{live.url}/greet", timeout=30).json() == {"greeting": "Hello"}
        document = httpx.get(f"{live.url}/openapi.json", timeout=30).json()
        assert document["paths"]["/greet"]["get"]["operationId"] == "greet"
        assert httpx.get(f"{live.url}/health", timeout=30).headers["Cache-Control"] == "no-store"


def _documented_keys(text: str, section: str) -> set[str]:
    heading = re.search(rf"^#+ `\[{re.escape(section)}\]`$", text, re.M)
    assert heading, f"[{section}] has no heading in docs/configuration.md"
    rest = text[heading.end():]
    following = re.search(r"^#+ ", rest, re.M)
    body = rest[:following.start()] if following else rest
    return set(re.findall(r"^\| `(\w+)` \|", body, re.M))


def test_every_setting_is_in_the_configuration_reference() -> None:
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    pm = create_plugin_manager(disable=["example"])
    sections = merge_sections(CORE_SECTIONS, *pm.hook.swain_config_sections())
    sections["connections.<stage>"] = dict(CONNECTION_SETTINGS)
    for name, settings in sections.items():
        assert _documented_keys(text, name) == set(settings), name


def test_every_part_of_the_dialect_contract_is_in_the_dialect_guide() -> None:
    text = (DOCS / "dialects.md").read_text(encoding="utf-8")
    names = {"name", "driver", *(n for n in vars(Dialect) if not n.startswith("_")),
             *(n for n in vars(DBConnection) if not n.startswith("_"))}
    missing = sorted(n for n in names if f"`{n}`" not in text and f"`{n}(" not in text)
    assert missing == []


def test_every_docs_page_pointed_at_exists() -> None:
    pointers = set()
    for folder in ("core", "plugins", "dialects", "contrib"):
        for source in (ROOT / folder).rglob("*.py"):
            pointers |= set(re.findall(r"docs/([\w-]+\.md)", source.read_text(encoding="utf-8")))
    pointers |= set(re.findall(r"docs/([\w-]+\.md)", (ROOT / "README.md").read_text("utf-8")))
    for page in DOCS.glob("*.md"):
        pointers |= set(re.findall(r"\]\(([\w-]+\.md)\)", page.read_text(encoding="utf-8")))
    assert pointers >= {"configuration.md", "plugins.md", "dialects.md"}
    assert sorted(p for p in pointers if not (DOCS / p).is_file()) == []


def test_no_code_or_doc_cites_a_document_outside_the_repository() -> None:
    # built in two pieces, so this file does not match itself
    citation = re.compile("SPEC" + r"(?: §|:)")
    found = []
    for folder in ("core", "plugins", "dialects", "contrib", "tests", "docs"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in (".py", ".md") and "build" not in path.parts and \
                    citation.search(path.read_text(encoding="utf-8")):
                found.append(str(path.relative_to(ROOT)))
    assert found == []
