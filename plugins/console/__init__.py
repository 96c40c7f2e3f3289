"""The console: swain's control plane in a browser, and its JSON API.

``swain console`` serves the whole workflow (projects, a connection per stage,
schema sync, authentication, tenancy and email settings, the nine mapping
cards, social login, roles and permissions, deploy) over swain's own core and
plugins; ``swain console create-admin`` adds a console user.  This module only
registers the command: everything else is imported when it runs, so the
plugin costs nothing to an API server.
"""

from __future__ import annotations

import click

from swain.core import hookimpl


@hookimpl
def swain_cli_commands(cli: click.Group) -> None:
    from .cli import console

    cli.add_command(console)
