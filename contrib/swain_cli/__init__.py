"""``swain_cli``: the SDK generator command line.

``gen`` runs the pinned OpenAPI Generator JAR on a spec file or a live swain
document; ``interactive`` builds the same command with a wizard; ``auth``
keeps the token for protected documents; ``doctor`` and ``engine`` check and
install the Java runtime.
"""

from __future__ import annotations

from .cli import cli, main

__all__ = ["cli", "main"]
