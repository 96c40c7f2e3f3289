"""``swain_cli interactive``: a questionary wizard that builds a ``gen`` command."""

from __future__ import annotations

import shlex
import sys


def is_terminal() -> bool:
    """True when both stdin and stdout are a terminal."""
    return sys.stdin.isatty() and sys.stdout.isatty()


def ask() -> list[str] | None:
    """Ask for the spec source, languages and output; return ``gen`` arguments."""
    import questionary

    source = questionary.select("Where is the OpenAPI document?",
                                choices=["a file", "a running swain server"]).ask()
    if source is None:
        return None
    args: list[str] = []
    if source == "a file":
        path = questionary.path("Spec file (json or yaml):").ask()
        if not path:
            return None
        args += ["-i", path]
    else:
        base = questionary.text("Server URL:", default="http://127.0.0.1:8000").ask()
        if not base:
            return None
        args += ["--swain-base", base]
    languages = questionary.checkbox("Languages:", choices=["python", "typescript"]).ask()
    if not languages:
        return None
    for language in languages:
        args += ["-l", language]
    output = questionary.text("Output folder:", default="./sdks").ask()
    if not output:
        return None
    args += ["-o", output]
    package = questionary.text("Package name (blank for default):", default="").ask()
    if package:
        args += ["-p", f"packageName={package}"]
    return args


def render(args: list[str]) -> str:
    """The shell command equivalent to ``args``."""
    return shlex.join(["swain_cli", "gen", *args])
