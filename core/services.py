"""Services: typed objects plugins share with each other through the runtime.

A plugin that offers something to other plugins (the account service, a rate
limiter, a permission cache…) declares a :class:`ServiceKey` beside the class,
provides it on ``runtime.services`` (usually from ``swain_startup``), and the
plugins that use it ``get`` it, so no plugin sets attributes on another's
objects and nothing lives in module globals::

    LIMITER: ServiceKey[Limiter] = ServiceKey("swain.rate_limit.limiter")

    @hookimpl
    def swain_startup(runtime):
        runtime.services.provide(LIMITER, Limiter(runtime.config))

    # elsewhere, per request:
    limiter = runtime.services.find(LIMITER)   # None when the plugin is off

Several hooks of one plugin that need the same object use :meth:`Services.ensure`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from .errors import ConfigError

T = TypeVar("T")


class ServiceKey(Generic[T]):
    """The typed name of a service; ``provider`` names the plugin expected to provide
    it, for the error when it is missing."""

    __slots__ = ("name", "provider")

    def __init__(self, name: str, provider: str = "") -> None:
        self.name = name
        self.provider = provider

    def __repr__(self) -> str:
        return f"ServiceKey({self.name!r})"


class Services:
    """The services of one runtime (one application, or one command)."""

    def __init__(self) -> None:
        self._found: dict[ServiceKey[Any], Any] = {}

    def provide(self, key: ServiceKey[T], value: T) -> T:
        """Offer ``value`` under ``key``; a key is provided once."""
        if key in self._found:
            raise ConfigError(f"service {key.name!r} is provided twice; two enabled plugins "
                              "offer it, so disable one of them")
        self._found[key] = value
        return value

    def get(self, key: ServiceKey[T]) -> T:
        """The service under ``key``; a :class:`ConfigError` naming its provider if absent."""
        try:
            found: T = self._found[key]
        except KeyError:
            by = f" (provided by the {key.provider!r} plugin; is it disabled?)" \
                if key.provider else ""
            raise ConfigError(f"service {key.name!r} is not available{by}") from None
        return found

    def find(self, key: ServiceKey[T]) -> T | None:
        """The service under ``key``, or ``None`` when nobody provides it."""
        found: T | None = self._found.get(key)
        return found

    def ensure(self, key: ServiceKey[T], create: Callable[[], T]) -> T:
        """The service under ``key``, created by ``create`` on first use."""
        if key not in self._found:
            self._found[key] = create()
        found: T = self._found[key]
        return found

    def __contains__(self, key: object) -> bool:
        return key in self._found
