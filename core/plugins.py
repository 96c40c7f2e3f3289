"""The plugin manager: one per application, built in a fixed order.

Registration order is policy: built-in plugins first, then the ``swain``
entry-point group (so a third party can override a built-in), then explicit
plugins (``[plugins] modules`` and those passed by code, e.g. tests).  pluggy
calls the most recently registered implementation first, so for a
``firstresult`` hook the last registered plugin wins; :func:`collect` turns
list hooks back into registration order.

Any problem found while building the manager is a :class:`ConfigError` that
names the plugin: a module that fails to import, an unknown ``swain_*`` hook
(a misspelling such as ``swain_rotues``), an implementation whose arguments
the spec does not have, or an ``async def`` implementation.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any

import pluggy

from . import hookspecs
from .errors import ConfigError

if TYPE_CHECKING:
    from .dialect import Dialect

log = logging.getLogger("swain")

hookimpl = pluggy.HookimplMarker("swain")

PLUGIN_GROUP = "swain"
DIALECT_GROUP = "swain.dialects"
HOOK_PREFIX = "swain_"

#: Built-in plugins, registered first, by module path; the name is the last part.
DEFAULT_PLUGINS: tuple[str, ...] = (
    "swain.plugins.openapi",
    "swain.plugins.swagger_ui",
    "swain.plugins.admin",
    "swain.plugins.aggregations",
    "swain.plugins.bulk",
    # Authentication: inert unless [auth] is enabled and [mapping.user] is mapped.
    "swain.plugins.auth.mapping",
    "swain.plugins.auth.passwords",
    "swain.plugins.auth.hash_formats",
    "swain.plugins.auth.jwt",
    "swain.plugins.auth.api_keys",
    "swain.plugins.auth.basic_auth",
    "swain.plugins.auth.smtp",
    "swain.plugins.auth.password_reset",
    "swain.plugins.auth.rate_limit",
    # Social login: inert unless [social.google] / [social.github] name a client_id.
    "swain.plugins.auth.google",
    "swain.plugins.auth.github",
    # Authorization: inert unless [rbac] enabled = true.
    "swain.plugins.rbac",
    # Tenant isolation: inert unless [rls] enabled = true.
    "swain.plugins.rls",
    # The control plane: only adds the `swain console` command.
    "swain.plugins.console",
)


@dataclass(frozen=True)
class PluginInfo:
    """Where a registered plugin came from, for ``swain plugins`` and errors."""

    name: str
    origin: str  # "builtin" | "entry point <value>" | "module" | "explicit"
    hooks: tuple[str, ...]


class SwainPluginManager(pluggy.PluginManager):
    """A pluggy manager that also treats undecorated ``swain_*`` functions as hooks.

    Without this, a misspelled hook that was never decorated would be ignored
    silently; with it, every ``swain_``-prefixed function must match a spec.
    """

    def __init__(self) -> None:
        super().__init__(PLUGIN_GROUP)
        self.origins: dict[str, str] = {}

    def parse_hookimpl_opts(self, plugin: Any, name: str) -> Any:
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is None and name.startswith(HOOK_PREFIX) \
                and inspect.isroutine(getattr(plugin, name, None)):
            return {}
        return opts


def _name(module_path: str) -> str:
    return module_path.rsplit(".", 1)[-1]


def builtin_names() -> list[str]:
    return [_name(m) for m in DEFAULT_PLUGINS]


def _entry_points(group: str) -> list[EntryPoint]:
    """Entry points of a group, once per name (the first installed distribution wins)."""
    seen: dict[str, EntryPoint] = {}
    for ep in entry_points(group=group):
        seen.setdefault(ep.name, ep)
    return list(seen.values())


def plugin_entry_points() -> list[EntryPoint]:
    return _entry_points(PLUGIN_GROUP)


def dialect_entry_points() -> list[EntryPoint]:
    return _entry_points(DIALECT_GROUP)


def _spec_names() -> list[str]:
    return [n for n in dir(hookspecs) if n.startswith(HOOK_PREFIX)]


def _register(pm: SwainPluginManager, plugin: object, name: str, origin: str) -> None:
    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:
        detail = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        raise ConfigError(f"plugin {name!r} ({origin}): {detail}") from None
    except ValueError as exc:
        raise ConfigError(f"plugin {name!r} ({origin}): {exc}; give each plugin its own "
                          "name") from None
    pm.origins[name] = origin
    for caller in pm.get_hookcallers(plugin) or []:
        if caller.spec is None:
            suggestion = difflib.get_close_matches(caller.name, _spec_names(), n=1)
            hint = f"; did you mean {suggestion[0]}?" if suggestion else ""
            raise ConfigError(f"plugin {name!r} ({origin}): unknown hook {caller.name}{hint} "
                              "(every hook is listed in swain.core.hookspecs)")
        for impl in caller.get_hookimpls():
            if impl.plugin is plugin and (inspect.iscoroutinefunction(impl.function)
                                          or inspect.isasyncgenfunction(impl.function)):
                raise ConfigError(
                    f"plugin {name!r} ({origin}): hook {caller.name} is async; hooks run once "
                    "while the app is built and must be plain functions that return objects "
                    "(put request-time work in those objects' async methods)")


def _display_name(plugin: object) -> str:
    named = getattr(plugin, "__name__", None)
    return named if isinstance(named, str) else type(plugin).__name__


def create_plugin_manager(disable: Iterable[str] = (), modules: Iterable[str] = (),
                          plugins: Iterable[object] = ()) -> SwainPluginManager:
    """A fresh manager: built-ins, then entry points in group ``swain``, then
    ``modules`` (``[plugins] modules``), then ``plugins`` (objects, e.g. from tests).

    ``disable`` names built-ins or entry points to leave out; an unknown name
    is an error listing the available ones.
    """
    pm = SwainPluginManager()
    pm.add_hookspecs(hookspecs)
    disabled = set(disable)
    eps = plugin_entry_points()
    available = set(builtin_names()) | {ep.name for ep in eps}
    unknown = disabled - available
    if unknown:
        raise ConfigError(f"plugins.disable: no plugin named {', '.join(sorted(unknown))} "
                          f"(available: {', '.join(sorted(available))})")
    for module_path in DEFAULT_PLUGINS:
        name = _name(module_path)
        if name not in disabled:
            _register(pm, importlib.import_module(module_path), name, "builtin")
    for ep in eps:
        if ep.name in disabled:
            continue
        try:
            plugin = ep.load()
        except Exception as exc:
            raise ConfigError(f"plugin {ep.name!r} (entry point {ep.value}) failed to load: "
                              f"{type(exc).__name__}: {exc}; uninstall it or add it to "
                              "plugins.disable") from exc
        replaced = pm.unregister(name=ep.name) if pm.has_plugin(ep.name) else None
        if replaced is not None:
            # Same name as a built-in: the installed package replaces it on purpose.
            log.info("plugin %r from entry point %s replaces the built-in one", ep.name, ep.value)
        _register(pm, plugin, ep.name, f"entry point {ep.value}")
    for module_path in modules:
        try:
            module = importlib.import_module(module_path)
        except Exception as exc:
            raise ConfigError(f"plugins.modules: cannot import {module_path!r}: "
                              f"{type(exc).__name__}: {exc}") from exc
        _register(pm, module, module_path, "plugins.modules")
    for plugin in plugins:
        _register(pm, plugin, _display_name(plugin), "explicit")
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:  # pragma: no cover - _register catches these
        raise ConfigError(f"plugin {pm.get_name(exc.plugin)!r}: {exc}") from exc
    return pm


def describe(pm: pluggy.PluginManager) -> list[PluginInfo]:
    """Registered plugins in registration order, with their origin and hooks."""
    origins = getattr(pm, "origins", {})
    found = []
    for name, plugin in pm.list_name_plugin():
        hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])
        found.append(PluginInfo(name, origins.get(name, "explicit"), tuple(hooks)))
    return found


def load_dialect(pm: pluggy.PluginManager, name: str) -> type[Dialect]:
    """The dialect class for a backend name (the URL scheme): the
    ``swain_get_dialect`` hook first, then entry point ``name`` of group
    ``swain.dialects``.  Loaded only now, so a missing driver matters only
    to the project that uses that dialect."""
    from .dialect import Dialect

    found: Any = pm.hook.swain_get_dialect(name=name)
    source = "the swain_get_dialect hook"
    if found is None:
        ep = next((e for e in dialect_entry_points() if e.name == name), None)
        if ep is None:
            known = sorted(e.name for e in dialect_entry_points())
            raise ConfigError(f"no dialect for {name!r} (installed: {', '.join(known)}); install a "
                              f"package that provides it in entry-point group {DIALECT_GROUP}")
        source = f"entry point {ep.value}"
        try:
            found = ep.load()
        except ImportError as exc:
            raise ConfigError(f"dialect {name!r} ({source}) needs a driver that is not "
                              f"installed: {exc}") from exc
        except Exception as exc:
            raise ConfigError(f"dialect {name!r} ({source}) failed to load: "
                              f"{type(exc).__name__}: {exc}") from exc
    if not (isinstance(found, type) and issubclass(found, Dialect)):
        raise ConfigError(f"dialect {name!r} ({source}) is {found!r}, not a subclass of "
                          "swain.core.Dialect")
    return found


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
    """Merge a hook's mapping results; a later-registered plugin overrides a name."""
    merged: dict[str, Any] = {}
    for result in reversed(getattr(pm.hook, hook)(**kwargs)):
        if result:
            merged.update(result)
    return merged
