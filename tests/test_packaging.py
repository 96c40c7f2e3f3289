"""The built wheel holds every package, its data and its entry points.

An editable install maps the folders straight onto ``swain.*`` and so hides a
package that a real install would miss; this builds a real wheel (from a copy
of the tree, so the shared work tree gets no ``build/`` folder) and reads it.
"""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {"core": "swain/core", "plugins": "swain/plugins", "dialects": "swain/dialects",
           "contrib": "swain/contrib"}
#: building the wheel in an isolated environment takes ~30 s here
slow = pytest.mark.slow
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[zipfile.ZipFile]:
    source = tmp_path_factory.mktemp("source")
    for folder in FOLDERS:
        shutil.copytree(ROOT / folder, source / folder, ignore=IGNORE)
    for name in ("pyproject.toml", "setup.py", "README.md"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(out),
         str(source)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    [built] = out.glob("swain-*.whl")
    with zipfile.ZipFile(built) as archive:
        yield archive


def _packages_in_tree() -> set[str]:
    found = set()
    for folder, target in FOLDERS.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder)
            if "__pycache__" not in relative.parts:
                found.add("/".join([target, *relative.parts]))
    return found


@slow
def test_every_package_is_in_the_wheel(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    expected = _packages_in_tree()
    assert {"swain/core", "swain/plugins", "swain/dialects", "swain/contrib",
            "swain/contrib/testing", "swain/contrib/swain_cli"} <= expected
    missing = sorted(p for p in expected if f"{p}/__init__.py" not in names)
    assert not missing, f"packages missing from the wheel: {missing}"
    # every module of the tree, not only the __init__ files
    for folder, target in FOLDERS.items():
        for module in (ROOT / folder).rglob("*.py"):
            if "__pycache__" in module.parts:
                continue
            inside = f"{target}/{module.relative_to(ROOT / folder).as_posix()}"
            assert inside in names, f"{inside} is not in the wheel"


@slow
def test_swain_itself_is_a_namespace_package(wheel: zipfile.ZipFile) -> None:
    assert "swain/__init__.py" not in wheel.namelist()


@slow
def test_typing_markers_and_package_data(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    for target in FOLDERS.values():
        assert f"{target}/py.typed" in names
    assert "swain/contrib/demo/schema.sql" in names
    # the benchmark's data set and its Node peer's start script
    assert {"swain/contrib/bench/schema.sql", "swain/contrib/bench/platformatic_start.mjs"} <= names
    assert wheel.read("swain/contrib/demo/schema.sql") == \
        (ROOT / "contrib/demo/schema.sql").read_bytes()
    # the console's pages, assets and migrations come from the installed package
    console = ROOT / "plugins" / "console"
    for pattern in ("templates/*.html", "static/*", "migrations/script.py.mako",
                    "migrations/versions/*.py"):
        for path in console.glob(pattern):
            assert f"swain/plugins/console/{path.relative_to(console).as_posix()}" in names, path


@slow
def test_entry_points(wheel: zipfile.ZipFile) -> None:
    [name] = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    parser = configparser.ConfigParser()
    parser.read_string(wheel.read(name).decode())
    scripts = dict(parser["console_scripts"])
    assert scripts["swain"] == "swain.core.cli:main"
    assert scripts["swain_cli"] == "swain.contrib.swain_cli:main"
    dialects = dict(parser["swain.dialects"])
    assert dialects["postgresql"] == "swain.dialects.postgresql:PostgresDialect"
    assert dialects["sqlite"] == "swain.dialects.sqlite:SQLiteDialect"
    assert {"mysql", "mariadb"} <= set(dialects)
    # every target an entry point names exists in the wheel
    names = set(wheel.namelist())
    for target in [*scripts.values(), *dialects.values()]:
        module = target.split(":")[0].replace(".", "/")
        assert f"{module}.py" in names or f"{module}/__init__.py" in names, target


@pytest.mark.parametrize("script", ["swain", "swain_cli"])
def test_console_scripts_start(script: str) -> None:
    """Both installed scripts import and answer --help (no ImportError)."""
    executable = Path(sys.executable).parent / script
    result = subprocess.run([str(executable), "--help"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout


def test_swain_cli_without_a_command_lists_them_and_fails() -> None:
    executable = Path(sys.executable).parent / "swain_cli"
    result = subprocess.run([str(executable)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert all(command in output for command in ("gen", "interactive", "auth", "doctor",
                                                 "engine"))
