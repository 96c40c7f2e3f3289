"""The plugin manager: one per application, built in a fixed order.

Registration order is policy: built-in plugins first, then the ``swain``
entry-point group (so a third party can override a built-in), then explicit
plugins (``[plugins] modules`` and those passed by code, e.g. tests).  Hooks
are called as pluggy documents: ``tryfirst`` implementations first,
``trylast`` ones last, and otherwise the most recently registered plugin
first, so a later plugin overrides an earlier one.  :func:`collect` keeps
that order.

A plugin declares the plugins it needs with ``requires = ("jwt",)`` (a module
attribute, or an attribute of a plugin object); a requirement that is
disabled or not installed stops start-up with a message naming both.
Feature packages add their own hook specifications from ``swain_addhooks``.

Any problem found while building the manager is a :class:`ConfigError` that
names the plugin: a module that fails to import, an unknown ``swain_*`` hook
(a misspelling such as ``swain_rotues``), an implementation whose arguments
the spec does not have, an ``async def`` implementation, or a missing
requirement.
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
    # Operations: Prometheus /metrics and the audit log.
    "swain.plugins.metrics",
    "swain.plugins.audit",
    # Invalidations between instances: carries core's invalidation bus over
    # PostgreSQL notifications or Redis.
    "swain.plugins.invalidation",
    # The mapping cards: which of the operator's tables play the auth and RBAC roles.
    "swain.plugins.mapping",
    # Authentication: inert unless [auth] is enabled and [mapping.user] is mapped.
    "swain.plugins.auth.passwords",
    "swain.plugins.auth.hash_formats",
    "swain.plugins.auth.jwt",
    "swain.plugins.auth.api_keys",
    "swain.plugins.auth.basic_auth",
    "swain.plugins.auth.smtp",
    "swain.plugins.auth.password_reset",
    "swain.plugins.auth.rate_limit",
    # Social login: inert unless a provider ([social.google], [social.github]) names a
    # client_id; providers come from the swain_social_providers hook.
    "swain.plugins.auth.social",
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


def _spec_names(pm: pluggy.PluginManager) -> list[str]:
    return [name for name, caller in vars(pm.hook).items()
            if isinstance(caller, pluggy.HookCaller) and caller.spec is not None]


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


def _check_hooks(pm: SwainPluginManager) -> None:
    """Every implementation matches a spec (feature packages' specs included, so this
    runs once all plugins are in) and is a plain function."""
    for name, plugin in pm.list_name_plugin():
        origin = pm.origins.get(name, "explicit")
        for caller in pm.get_hookcallers(plugin) or []:
            if caller.spec is None:
                suggestion = difflib.get_close_matches(caller.name, _spec_names(pm), n=1)
                hint = f"; did you mean {suggestion[0]}?" if suggestion else ""
                raise ConfigError(f"plugin {name!r} ({origin}): unknown hook {caller.name}{hint} "
                                  "(every hook is listed in swain.core.hookspecs)")
            for impl in caller.get_hookimpls():
                if impl.plugin is plugin and (inspect.iscoroutinefunction(impl.function)
                                              or inspect.isasyncgenfunction(impl.function)):
                    raise ConfigError(
                        f"plugin {name!r} ({origin}): hook {caller.name} is async; hooks run "
                        "once while the app is built and must be plain functions that return "
                        "objects (put request-time work in those objects' async methods)")


def requirements(plugin: object) -> tuple[str, ...]:
    """The plugin names ``plugin`` declares it needs (its ``requires`` attribute)."""
    declared = getattr(plugin, "requires", ())
    if isinstance(declared, str):
        return (declared,)
    return tuple(declared)


def _check_requirements(pm: SwainPluginManager, disabled: set[str]) -> None:
    for name, plugin in pm.list_name_plugin():
        for needed in requirements(plugin):
            if pm.has_plugin(needed):
                continue
            why = "disabled in plugins.disable" if needed in disabled else "not installed"
            raise ConfigError(f"plugin {name!r} requires plugin {needed!r}, which is {why}; "
                              f"enable {needed!r}, or add {name!r} to plugins.disable as well")


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
    # Historic: every plugin's swain_addhooks runs as it is registered.
    pm.hook.swain_addhooks.call_historic(kwargs={"pm": pm})
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
    _check_hooks(pm)
    _check_requirements(pm, disabled)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:  # pragma: no cover - _check_hooks finds these
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
    found: Any = pm.hook.swain_get_dialect(name=name)
    if found is None:
        return dialect_class(name)
    return _checked(name, found, "the swain_get_dialect hook")


def dialect_class(name: str) -> type[Dialect]:
    """The dialect class registered as entry point ``name`` of group ``swain.dialects``."""
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
    return _checked(name, found, source)


def _checked(name: str, found: Any, source: str) -> type[Dialect]:
    from .dialect import Dialect

    if not (isinstance(found, type) and issubclass(found, Dialect)):
        raise ConfigError(f"dialect {name!r} ({source}) is {found!r}, not a subclass of "
                          "swain.core.Dialect")
    return found


def collect(pm: pluggy.PluginManager, hook: str, **kwargs: Any) -> list[Any]:
    """Flatten a hook's list results into one list, in the order pluggy called the
    implementations (``tryfirst`` first, ``trylast`` last, else the most recently
    registered first)."""
    flat: list[Any] = []
    for result in getattr(pm.hook, hook)(**kwargs):
        if result:
            flat.extend(result)
    return flat


def collect_mappings(pm: pluggy.PluginManager, hook: str, **kwargs: Any) -> dict[str, Any]:
    """Merge a hook's mapping results; of two entries with one name, the one pluggy
    called first wins (as for a ``firstresult`` hook)."""
    merged: dict[str, Any] = {}
    for result in reversed(getattr(pm.hook, hook)(**kwargs)):
        if result:
            merged.update(result)
    return merged
