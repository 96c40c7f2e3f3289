"""The plugin manager: one per application, built in a fixed order.

Registration order is policy: built-in plugins first, then the ``swain``
entry-point group (so a third party can override a built-in), then explicit
plugins (``[plugins] modules`` and those passed by code, e.g. tests).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from importlib.metadata import entry_points
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pluggy

from . import hookspecs
from .errors import ConfigError

if TYPE_CHECKING:
    from .dialect import Dialect

hookimpl = pluggy.HookimplMarker("swain")

#: Built-in plugins, registered first, by module path; the name is the last part.
DEFAULT_PLUGINS: tuple[str, ...] = (
    "swain.plugins.openapi",
    "swain.plugins.swagger_ui",
    "swain.plugins.admin",
)


def _name(module_path: str) -> str:
    return module_path.rsplit(".", 1)[-1]


def builtin_names() -> list[str]:
    return [_name(m) for m in DEFAULT_PLUGINS]


def create_plugin_manager(disable: Iterable[str] = (), modules: Iterable[str] = (),
                          plugins: Iterable[object] = ()) -> pluggy.PluginManager:
    """Built-ins, then entry points in group ``swain``, then explicit ones; then
    :meth:`~pluggy.PluginManager.check_pending` so a misspelled hook fails here."""
    pm = pluggy.PluginManager("swain")
    pm.add_hookspecs(hookspecs)
    disabled = set(disable)
    available = set(builtin_names()) | {ep.name for ep in entry_points(group="swain")}
    unknown = disabled - available
    if unknown:
        raise ConfigError(f"plugins.disable: no plugin named {', '.join(sorted(unknown))} "
                          f"(available: {', '.join(sorted(available))})")
    for name in disabled:
        pm.set_blocked(name)
    for module_path in DEFAULT_PLUGINS:
        if _name(module_path) not in disabled:
            pm.register(importlib.import_module(module_path), name=_name(module_path))
    for ep in entry_points(group="swain"):
        if ep.name in disabled or pm.get_plugin(ep.name) is not None:
            continue
        try:
            plugin = ep.load()
        except Exception as exc:
            raise ConfigError(f"plugin {ep.name!r} (entry point {ep.value}) failed to load: "
                              f"{exc}; uninstall it or add it to plugins.disable") from exc
        pm.register(plugin, name=ep.name)
    for module_path in modules:
        try:
            module: ModuleType = importlib.import_module(module_path)
        except ImportError as exc:
            raise ConfigError(f"plugins.modules: cannot import {module_path!r}: {exc}") from exc
        pm.register(module, name=module_path)
    for plugin in plugins:
        pm.register(plugin)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise ConfigError(f"plugin {pm.get_name(exc.plugin)!r}: {exc}; hook names are "
                          "swain_-prefixed, see swain.core.hookspecs") from exc
    return pm


def load_dialect(pm: pluggy.PluginManager, name: str) -> type[Dialect]:
    """The dialect class for a backend name: the hook first, then entry point group
    ``swain.dialects``; loaded only now, so a missing driver matters only when used."""
    found: Any = pm.hook.swain_get_dialect(name=name)
    if found is not None:
        return found  # type: ignore[no-any-return]
    for ep in entry_points(group="swain.dialects"):
        if ep.name == name:
            try:
                return ep.load()  # type: ignore[no-any-return]
            except ImportError as exc:
                raise ConfigError(f"dialect {name!r} needs a driver that is not installed: "
                                  f"{exc}") from exc
    known = sorted({ep.name for ep in entry_points(group="swain.dialects")})
    raise ConfigError(f"no dialect for {name!r} (installed: {', '.join(known)}); install a "
                      "package that provides it in entry-point group swain.dialects")


def collect(pm: pluggy.PluginManager, hook: str, **kwargs: Any) -> list[Any]:
    """Flatten a hook's list results into one list, in registration order."""
    results = getattr(pm.hook, hook)(**kwargs)
    # pluggy returns the LIFO order of registration; policy is FIFO, so reverse.
    flat: list[Any] = []
    for result in reversed(results):
        if result:
            flat.extend(result)
    return flat


def collect_mappings(pm: pluggy.PluginManager, hook: str, **kwargs: Any) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for result in reversed(getattr(pm.hook, hook)(**kwargs)):
        if result:
            merged.update(result)
    return merged
