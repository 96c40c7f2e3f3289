"""``swain_cli interactive``: a questionary wizard that builds a ``gen`` command.

The wizard only collects answers; ``cli.interactive_cmd`` prints the equivalent
command, asks for confirmation and runs it, so what runs is exactly what was shown.
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

FILE = "a file"
SERVER = "a running swain server"
LANGUAGES = ("python", "typescript")
_PACKAGE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def is_terminal() -> bool:
    """True when both stdin and stdout are a terminal."""
    return sys.stdin.isatty() and sys.stdout.isatty()


def spec_file_error(text: str) -> bool | str:
    """Validate a spec path: True, or the message shown under the prompt."""
    if not text.strip():
        return "give the path of an OpenAPI document"
    path = Path(text.strip()).expanduser()
    if not path.is_file():
        return f"no such file: {path}"
    if path.suffix.lower() not in (".json", ".yaml", ".yml"):
        return "expected a .json, .yaml or .yml file"
    return True


def url_error(text: str) -> bool | str:
    """Validate a server URL."""
    return bool(re.match(r"https?://[^/\s]+", text.strip())) or "expected http(s)://host[:port]"


def package_error(text: str) -> bool | str:
    """Validate an optional package name."""
    return (not text.strip() or bool(_PACKAGE.fullmatch(text.strip()))
            or "letters, digits and underscores, not starting with a digit")


def ask() -> list[str] | None:
    """Ask for the spec source, languages, output and package; return ``gen`` arguments.

    None when the user cancels (Ctrl-C).
    """
    import questionary

    source = questionary.select("Where is the OpenAPI document?", choices=[FILE, SERVER]).ask()
    if source is None:
        return None
    args: list[str] = []
    if source == FILE:
        # Completion on Tab, not while typing: Enter on an open menu only closes the menu.
        path = questionary.path("Spec file (json or yaml):", validate=spec_file_error,
                                complete_while_typing=False).ask()
        if path is None:
            return None
        args += ["-i", str(Path(path.strip()).expanduser())]
    else:
        base = questionary.text("Server URL:", default="http://127.0.0.1:8000",
                                validate=url_error).ask()
        if base is None:
            return None
        args += ["--swain-base", base.strip()]
    languages = questionary.checkbox(
        "Languages (space selects, enter confirms):", choices=list(LANGUAGES),
        validate=lambda chosen: bool(chosen) or "select at least one language").ask()
    if not languages:
        return None
    for language in languages:
        args += ["-l", language]
    output = questionary.text("Output folder:", default="sdks",
                              validate=lambda text: bool(text.strip()) or "give a folder").ask()
    if output is None:
        return None
    args += ["-o", output.strip()]
    package = questionary.text("Package name (blank for the generator's default):",
                               validate=package_error).ask()
    if package is None:
        return None
    if package.strip():
        args += ["-p", f"packageName={package.strip()}"]
    return args


def confirm() -> bool | None:
    """Ask whether to run the command just shown; None when cancelled."""
    import questionary

    answer: bool | None = questionary.confirm("Run it now?", default=True).ask()
    return answer


def render(args: list[str]) -> str:
    """The shell command equivalent to ``args``."""
    return shlex.join(["swain_cli", "gen", *args])
