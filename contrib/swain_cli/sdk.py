"""What ``swain_cli gen`` adds to the generators' own output.

* Python: the open models (the table rows, whose document says
  ``additionalProperties: true``) read as mappings as well as objects:
  ``row["email"]``, ``row.get("createdAt")``, ``"orders" in row``, ``dict(row)``,
  by the JSON names, and the members the document does not name (included
  relationships, ``aggregations``) also as attributes.  Done with the generator's
  own template for models, taken from the pinned JAR and given these methods.
* TypeScript (axios): a package, ``npmName`` ``swain-api`` unless given, built
  with ``npm install`` (its ``prepare`` script runs ``tsc``) where npm is found, so
  ``npm install ./sdks/typescript`` and ``import ... from "./sdks/typescript"``
  work at once.
"""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

#: Additional properties set for a generator unless the user sets them.
DEFAULT_PROPERTIES: dict[str, tuple[tuple[str, str], ...]] = {
    "python": (("packageName", "swain_api"),),
    "typescript-axios": (("npmName", "swain-api"), ("npmVersion", "1.0.0")),
}

#: Python attribute names for properties that would hide the mapping methods
#: (``row.var_items`` is a column named ``items``; ``row["items"]`` reads it as well).
PYTHON_NAME_MAPPINGS = "get=var_get,keys=var_keys,values=var_values,items=var_items"
#: The template of a Python model, inside the generator's JAR.
PYTHON_MODEL = "python/model_generic.mustache"
#: The line of :data:`PYTHON_MODEL` before which the mapping methods go.
PYTHON_ANCHOR = "    def to_str(self) -> str:\n"
#: The line of its ``from_dict`` before which a row notes the members it came with.
PYTHON_GIVEN_ANCHOR = "        # store additional fields in additional_properties\n"
PYTHON_GIVEN = "        _obj._given = [_key for _key in obj if _key in cls.__properties]\n"
PYTHON_ROW_METHODS = '''{{#isAdditionalPropertiesTrue}}
    # A row reads as a mapping too, by its JSON names: row["email"],
    # row.get("createdAt"), "orders" in row, dict(row).  Members the document does
    # not name (included relationships, aggregations) are attributes as well.  A row
    # read from JSON has the columns it came with (``fields`` may have left some out).
    _given: Optional[List[str]] = None

    def _json_names(self) -> Dict[str, str]:
        names = {(info.alias or name): name for name, info in type(self).model_fields.items()
                 if name != "additional_properties"}
        if self._given is None:
            return names
        return {key: name for key, name in names.items() if key in self._given}

    def __getitem__(self, key: str) -> Any:
        name = self._json_names().get(key)
        if name is not None:
            return getattr(self, name)
        return self.additional_properties[key]

    def __contains__(self, key: object) -> bool:
        return key in self._json_names() or key in self.additional_properties

    def get(self, key: str, default: Any = None) -> Any:
        """The value under the JSON name ``key``, or ``default`` when there is none."""
        try:
            return self[key]
        except KeyError:
            return default

    def keys(self) -> List[str]:
        """The JSON names: the documented columns it has, then the other members."""
        return [*self._json_names(), *self.additional_properties]

    def values(self) -> List[Any]:
        return [self[key] for key in self.keys()]

    def items(self) -> List[Any]:
        return [(key, self[key]) for key in self.keys()]

    def __getattr__(self, name: str) -> Any:
        extra = self.__dict__.get("additional_properties") or {}
        if name in extra:
            return extra[name]
        return super().__getattr__(name)

{{/isAdditionalPropertiesTrue}}
'''


class TemplateError(RuntimeError):
    """The generator's template is not the one the mapping methods were written for."""


def properties_for(generator: str, given: tuple[str, ...]) -> tuple[str, ...]:
    """``given`` (``key=value``) plus the generator's :data:`DEFAULT_PROPERTIES` not set there."""
    keys = {prop.partition("=")[0] for prop in given}
    defaults = tuple(f"{key}={value}" for key, value in DEFAULT_PROPERTIES.get(generator, ())
                     if key not in keys)
    return (*given, *defaults)


def python_templates(jar: Path, folder: Path) -> Path:
    """Write the Python model template with the row mapping methods into ``folder``
    (a template directory for ``-t``) and return it."""
    with zipfile.ZipFile(jar) as archive:
        template = archive.read(PYTHON_MODEL).decode("utf-8")
    for anchor in (PYTHON_ANCHOR, PYTHON_GIVEN_ANCHOR):
        if template.count(anchor) != 1:
            raise TemplateError(f"{PYTHON_MODEL} in {jar.name} has no single {anchor.strip()!r}"
                                " line: the row mapping methods cannot be added")
    template = template.replace(PYTHON_ANCHOR, PYTHON_ROW_METHODS + PYTHON_ANCHOR)
    template = template.replace(PYTHON_GIVEN_ANCHOR, PYTHON_GIVEN + PYTHON_GIVEN_ANCHOR)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / Path(PYTHON_MODEL).name).write_text(template, encoding="utf-8")
    return folder


def npm_executable() -> str | None:
    """The ``npm`` on PATH, or None."""
    return shutil.which("npm")


def build_typescript(folder: Path, npm: str) -> subprocess.CompletedProcess[str]:
    """``npm install`` in a generated TypeScript package: its dependencies, then its
    ``prepare`` script, which compiles ``dist/``."""
    return subprocess.run([npm, "install", "--no-audit", "--no-fund", "--loglevel=error"],
                          cwd=folder, capture_output=True, text=True, timeout=900)
