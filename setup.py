"""Package discovery for the four top-level folders mapped onto ``swain.*``.

``swain`` is a namespace package assembled from ``core/``, ``plugins/``,
``dialects/`` and ``contrib/`` (see ``package-dir`` in pyproject.toml).
Listing sub-packages by hand is how a missing one slips through an editable
install, so they are computed here from the ``__init__.py`` files.
"""

from __future__ import annotations

from pathlib import Path

from setuptools import setup

ROOTS = {"core": "swain.core", "plugins": "swain.plugins", "dialects": "swain.dialects",
         "contrib": "swain.contrib"}


def _packages() -> list[str]:
    found = []
    for folder, package in ROOTS.items():
        for init in sorted(Path(folder).rglob("__init__.py")):
            relative = init.parent.relative_to(folder)
            found.append(".".join([package, *relative.parts]))
    return found


setup(packages=_packages())
