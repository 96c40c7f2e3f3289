"""``swain console`` (serve the control plane), ``create-admin`` and ``stop-all``."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import click
from aiohttp import web

from .context import CONSOLE
from .crypto import ConsoleKeyError

SETUP_TTL = 24 * 3600.0


@dataclass(frozen=True)
class Options:
    data_dir: Path
    store: str


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "swain-console"


def _options(ctx: click.Context) -> Options:
    found: Options = ctx.meta["swain.console"]
    return found


@click.group("console", invoke_without_command=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8100, show_default=True)
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              envvar="SWAIN_CONSOLE_DATA", default=None,
              help="Where the key file, the SQLite store and the deployments live "
                   "(default: ~/.local/share/swain-console).")
@click.option("--store", envvar="SWAIN_CONSOLE_STORE", default=None,
              help="The metadata store: a SQLite file (default: <data-dir>/console.db) or a "
                   "postgresql:// URL.")
@click.option("--public-url", default=None,
              help="The console's address as users reach it (default: http://HOST:PORT); "
                   "https makes its cookies Secure.")
@click.pass_context
def console(ctx: click.Context, host: str, port: int, data_dir: Path | None, store: str | None,
            public_url: str | None) -> None:
    """Serve the console: the whole workflow in a browser, and its JSON API."""
    folder = (data_dir or default_data_dir()).expanduser().resolve()
    ctx.meta["swain.console"] = Options(folder, store or str(folder / "console.db"))
    if ctx.invoked_subcommand is not None:
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    url = (public_url or f"http://{shown}:{port}").rstrip("/")
    try:
        asyncio.run(_serve(_options(ctx), host, port, url))
    except (ConsoleKeyError, ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None


async def _serve(options: Options, host: str, port: int, url: str) -> None:
    from .app import open_console

    options.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    app = await open_console(options.store, options.data_dir, url,
                             secure_cookies=url.startswith("https://"))
    store = app[CONSOLE].store
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await web.TCPSite(runner, host, port).start()
        setup = ""
        if await store.count_users() == 0:
            token = await store.create_setup_token(SETUP_TTL)
            setup = (f"\nNo console user yet. Create the first admin at this one-time link "
                     f"(valid 24 hours):\n  {url}/setup?token={token}")
        # One write, so whoever waits for the first line also gets the link.
        click.echo(f"swain console on {url}  (store: {_safe(options.store)}; data: "
                   f"{options.data_dir}){setup}", err=True)
        sys.stderr.flush()
        await stop.wait()
    finally:
        click.echo("swain console stopping; deployments keep running (see `swain console "
                   "stop-all`)", err=True)
        await runner.cleanup()


def _safe(store: str) -> str:
    if "://" not in store:
        return store
    from sqlalchemy.engine import make_url

    return make_url(store).render_as_string(hide_password=True)


async def _with_store(options: Options, work: object) -> object:
    from .store import Store

    store = await Store.open(options.store)
    try:
        return await work(store)  # type: ignore[operator]
    finally:
        await store.close()


@console.command("create-admin")
@click.option("--email", prompt="Email", help="The sign-in email of the new console user.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.pass_context
def create_admin(ctx: click.Context, email: str, password_stdin: bool) -> None:
    """Add a console user (the first one, or another)."""
    from swain.plugins.auth.passwords import Argon2Hasher

    options = _options(ctx)
    if "@" not in email:
        raise click.BadParameter("give an email address", param_hint="--email")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 10:
        raise click.ClickException("the password needs at least 10 characters")
    encoded = Argon2Hasher().hash(password)

    async def work(store: object) -> str:
        from .store import Store

        assert isinstance(store, Store)
        if await store.user_by_email(email) is not None:
            raise click.ClickException(f"a console user {email.strip().lower()} exists already")
        return (await store.create_user(email, encoded)).email

    options.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    made = asyncio.run(_with_store(options, work))
    click.echo(f"console user {made} created; sign in at the console's /login")


@console.command("stop-all")
@click.pass_context
def stop_all(ctx: click.Context) -> None:
    """Stop every deployment the console started."""
    from .crypto import Vault, load_key
    from .deploy import Deployer

    options = _options(ctx)
    key = load_key(options.data_dir / "console.key")

    async def work(store: object) -> None:
        from .store import Store

        assert isinstance(store, Store)
        await Deployer(store, Vault(key), options.data_dir).stop_all()

    asyncio.run(_with_store(options, work))
    click.echo("every deployment is stopped")
