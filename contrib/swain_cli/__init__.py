"""``swain_cli``: the SDK generator command line (SPEC §13).

Its commands (``gen``, ``interactive``, ``auth``, ``doctor``, ``engine``)
arrive in a later release.  Until then the console script exists so that the
name is reserved and installs cleanly; run without a command it says so and
exits with status 1, so no script mistakes it for a successful generation.
"""

from __future__ import annotations

import click

NOT_YET = ("swain_cli generates client SDKs from a swain API's OpenAPI document. Its commands "
           "(gen, interactive, auth, doctor, engine) are not in this release yet; meanwhile "
           "`swain` serves the document at /openapi.json for any OpenAPI generator.")


@click.group(invoke_without_command=True, help=NOT_YET)
@click.version_option(package_name="swain")
@click.pass_context
def cli(ctx: click.Context) -> None:
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())
        click.echo(f"\n{NOT_YET}", err=True)
        ctx.exit(1)


def main() -> None:
    cli(prog_name="swain_cli")
