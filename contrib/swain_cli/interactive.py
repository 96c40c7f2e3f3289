"""``swain_cli interactive``: a questionary wizard that builds a ``gen`` command.

The wizard only collects answers; ``cli.interactive_cmd`` prints the equivalent
command, asks for confirmation and runs it, so what runs is exactly what was shown.
"""

from __future__ import annotations

import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from . import auth, engine
from . import console as swain_console

FILE = "a file"
SERVER = "a running swain server"
CONSOLE = "a project in the swain console"
LANGUAGES = ("python", "typescript")
DEFAULT_GENERATOR_ARGS = (f"--global-property={engine.NO_STUBS}",)
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


@dataclass
class Answers:
    """The ``gen`` arguments, and (console flow) the preview shown before running."""

    args: list[str]
    preview: list[str] = field(default_factory=list)


def languages_error(text: str) -> bool | str:
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    return bool(chosen) or "name at least one generator, e.g. python,typescript"


def ask() -> Answers | None:
    """Ask for the spec source, languages, output and package; return ``gen`` arguments.

    None when the user cancels (Ctrl-C).
    """
    import questionary

    source = questionary.select("Where is the OpenAPI document?",
                                choices=[FILE, SERVER, CONSOLE]).ask()
    if source is None:
        return None
    if source == CONSOLE:
        return ask_console()
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
    return Answers(args)


def _signed_in(base: str) -> str | None:
    """The stored token, or a new one after signing in (None when declined)."""
    import questionary

    token, _ = auth.load_token()
    if token:
        return token
    click.echo("[swain_cli] no authentication token configured.")
    if not questionary.confirm("Sign in before continuing?", default=True).ask():
        return None
    while True:
        email = questionary.text("Username or email:").ask()
        password = questionary.password("Password:").ask()
        if email is None or password is None:
            return None
        try:
            token = swain_console.login(base, email.strip(), password)
        except swain_console.ConsoleError as exc:
            click.echo(f"[swain_cli] {exc}")
            continue
        swain_console.remember_base(base)
        where = auth.save_token(token)
        place = "system keyring" if where == "keyring" else where
        click.echo(f"[swain_cli] stored access token ({swain_console.masked(email.strip())}) "
                   f"in {place}")
        return token


def _choose(question: str, options: list[tuple[str, Any]]) -> Any:
    import questionary

    labels = [label for label, _ in options]
    picked = questionary.select(question, choices=labels).ask()
    return None if picked is None else options[labels.index(picked)][1]


def ask_console() -> Answers | None:
    """The console flow: sign in, pick a project and a connection, then output and languages."""
    import questionary

    base = swain_console.saved_base()
    token = _signed_in(base)
    if token is None:
        return None
    try:
        projects = swain_console.projects(base, token)
    except swain_console.ConsoleError as exc:
        click.echo(f"[swain_cli] {exc}")
        return None
    if not projects:
        click.echo(f"[swain_cli] no project yet: create one in the console at {base}")
        return None
    project = _choose("Select a project", [(f"{p['name']} (#{p['id']})", p) for p in projects])
    if project is None:
        return None
    if not project["connections"]:
        click.echo(f"[swain_cli] project #{project['id']} has no connection yet")
        return None
    connection = _choose("Select a connection",
                         [(c["label"], c) for c in project["connections"]])
    if connection is None:
        return None
    output = questionary.text("Output directory (sdks):", default="./sdks").ask()
    chosen = questionary.text("Target languages (comma separated, e.g. python,typescript):",
                              default="python", validate=languages_error).ask()
    if output is None or chosen is None:
        return None
    languages = [part.strip() for part in chosen.split(",") if part.strip()]
    pid, cid = str(project["id"]), str(connection["id"])
    args = ["--swain-project-id", pid, "--swain-connection-id", cid, "-o", output.strip()]
    for language in languages:
        args += ["-l", language]
    for extra in DEFAULT_GENERATOR_ARGS:
        args += ["--generator-arg", extra]
    preview = ["configuration preview", f"swain base: {base}",
               f"project: {project['name']} (#{pid})",
               f"connection: #{cid} ({connection['stage']})",
               f"dynamic swagger: {swain_console.document_url(base, pid, cid)}",
               f"output: {output.strip()}", f"languages: {', '.join(languages)}",
               f"extra generator args: {list(DEFAULT_GENERATOR_ARGS)}",
               f"engine: openapi-generator {engine.ENGINE_VERSION}"]
    return Answers(args, preview)


def confirm(question: str = "Run it now?") -> bool | None:
    """Ask whether to run the command just shown; None when cancelled."""
    import questionary

    answer: bool | None = questionary.confirm(question, default=True).ask()
    return answer


def render(args: list[str]) -> str:
    """The shell command equivalent to ``args``."""
    return shlex.join(["swain_cli", "gen", *args])
