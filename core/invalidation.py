"""The invalidation bus: cached facts about callers are dropped the moment they change.

Plugins cache what every request would otherwise read (a user's active flag,
their permissions, an API key's owner) and say what makes each cache stale:

* they **watch** tables (``swain_invalidation_watches``): a committed write
  on a watched table, through the table API, is published under the watch's
  topic, keyed by the changed row's key column when it has one;
* they **subscribe** to topics on the bus (``runtime.services.get(INVALIDATION)``)
  and drop the entries a message names;
* they **publish** what changes outside the table API (a password reset, a
  revoked key, an ``swain rbac`` command).

A message is delivered at once to this application's subscribers and sent
through the transports (``swain_invalidation_transports``: PostgreSQL
``LISTEN/NOTIFY`` or Redis pub/sub, from the ``invalidation`` plugin) to every
other instance, which delivers it to its own.  Transports report each
(re)connection as :data:`EVERYTHING`, since messages sent while an instance
was not listening are lost: it then forgets every cached entry.  Without a
transport, other instances learn of a change when their caches expire, so
every cache keeps its time limit as the fallback.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from .protocols import AuditEvent
from .services import ServiceKey

log = logging.getLogger("swain")

#: the topic that stands for all of them: forget every cached entry
EVERYTHING = "*"
#: what a topic name may be: short, printable, no separator
_TOPIC = re.compile(r"[A-Za-z0-9_.-]{1,64}|\*")
#: the most characters of a key a message carries (PostgreSQL payloads are small)
MAX_KEY = 256
#: audit actions that are writes through the table gateway
TABLE_WRITES = frozenset({"create", "update", "upsert", "delete", "mass_update", "mass_delete"})


@dataclass(frozen=True)
class Invalidation:
    """One message: entries under ``topic`` went stale; only the one cached under
    ``key`` (a key's text, e.g. a user id) when it is given, else all of them."""

    topic: str
    key: str | None = None

    def __post_init__(self) -> None:
        if not _TOPIC.fullmatch(self.topic):
            raise ValueError(f"invalidation topic {self.topic!r}: letters, digits, _ . - "
                             "(at most 64)")
        if self.key is not None and len(self.key) > MAX_KEY:
            object.__setattr__(self, "key", None)  # too long to carry: all of the topic

    def encode(self) -> str:
        """The message as transports carry it: ``topic`` or ``topic:key``."""
        return self.topic if self.key is None else f"{self.topic}:{self.key}"

    @classmethod
    def decode(cls, text: str) -> Invalidation | None:
        """A message from a transport; ``None`` for text that is not one."""
        topic, colon, key = text.partition(":")
        try:
            return cls(topic, key if colon else None)
        except ValueError:
            return None


@dataclass(frozen=True)
class Watch:
    """A table whose committed writes make entries under ``topic`` stale.

    ``key`` is the column whose value names the entry (a user's id): a write
    of one row publishes ``topic:<value>``, any other write the whole topic.
    ``columns`` narrow which updates count, for database triggers that see
    every update (an update of a user's name leaves their identity alone);
    empty means every change does.
    """

    table: str
    topic: str
    key: str | None = None
    columns: tuple[str, ...] = ()


@runtime_checkable
class InvalidationTransport(Protocol):
    """Carries invalidations between instances (``swain_invalidation_transports``)."""

    name: str

    async def send(self, message: Invalidation) -> None:
        """Tell every instance (this one included, where that is simpler).  May raise:
        the bus logs the failure and the caches' time limits take over."""

    async def listen(self, deliver: Callable[[Invalidation], None]) -> None:
        """Deliver every message sent by any instance until cancelled, reconnecting
        by itself; deliver :data:`EVERYTHING` after every (re)connection."""

    async def close(self) -> None:
        """Release connections (after ``listen`` was cancelled, or after sending
        from a command)."""


Subscriber = Callable[[str | None], None]


@dataclass
class InvalidationBus:
    """The :data:`INVALIDATION` service of one runtime."""

    #: watched tables (by table key) and what their writes make stale
    watches: dict[str, list[Watch]] = field(default_factory=dict)
    transports: list[InvalidationTransport] = field(default_factory=list)
    _subscribers: dict[str, list[Subscriber]] = field(default_factory=dict)

    def subscribe(self, topic: str, subscriber: Subscriber) -> None:
        """Call ``subscriber(key)`` for every message under ``topic`` (``key`` is
        ``None`` for all entries, also on :data:`EVERYTHING`).  It runs on the
        event loop for every message: drop cache entries, nothing slow."""
        Invalidation(topic)  # a valid name
        self._subscribers.setdefault(topic, []).append(subscriber)

    def watch(self, watches: Iterable[Watch]) -> None:
        for found in watches:
            Invalidation(found.topic)
            self.watches.setdefault(found.table, []).append(found)

    def deliver(self, message: Invalidation) -> None:
        """Hand ``message`` to this runtime's subscribers."""
        if message.topic == EVERYTHING:
            targets: Sequence[tuple[Subscriber, str | None]] = [
                (s, None) for subscribers in self._subscribers.values() for s in subscribers]
        else:
            targets = [(s, message.key) for s in self._subscribers.get(message.topic, ())]
        for subscriber, key in targets:
            try:
                subscriber(key)
            except Exception:
                log.exception("invalidation subscriber %r failed on %s", subscriber,
                              message.encode())

    async def publish(self, topic: str, key: Any = None) -> None:
        """Something under ``topic`` (``key`` of it, if given) changed and committed:
        deliver here at once, then tell the other instances."""
        message = Invalidation(topic, None if key is None else str(key))
        self.deliver(message)
        for transport in self.transports:
            try:
                await transport.send(message)
            except Exception as exc:
                log.warning("invalidation %s not sent through %s (%s: %s); other instances "
                            "apply it when their caches expire", message.encode(), transport.name,
                            type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")

    def watched(self, table: str | None) -> bool:
        return table is not None and table in self.watches

    def invalidations_of(self, event: AuditEvent) -> list[Invalidation]:
        """What a committed write on a watched table makes stale."""
        if event.table is None or event.action not in TABLE_WRITES:
            return []
        found = []
        for watch in self.watches.get(event.table, ()):
            key = None
            if watch.key is not None and isinstance(event.target, Mapping) and \
                    event.target.get(watch.key) is not None:
                key = str(event.target[watch.key])
            found.append(Invalidation(watch.topic, key))
        return found

    async def audited(self, events: Iterable[AuditEvent]) -> None:
        """Publish what the committed writes among ``events`` make stale (each once)."""
        messages = dict.fromkeys(m for event in events for m in self.invalidations_of(event))
        for message in messages:
            await self.publish(message.topic, message.key)

    @asynccontextmanager
    async def listening(self, timeout: float) -> AsyncIterator[None]:
        """Run every transport's listener while the body runs (a served app): wait
        up to ``timeout`` seconds for each to connect first, so an instance that
        serves already hears every change."""
        tasks: list[asyncio.Task[None]] = []
        connected: list[asyncio.Event] = []
        for transport in self.transports:
            ready = asyncio.Event()

            def deliver(message: Invalidation, ready: asyncio.Event = ready) -> None:
                if message.topic == EVERYTHING:
                    ready.set()
                self.deliver(message)

            connected.append(ready)
            tasks.append(asyncio.create_task(transport.listen(deliver),
                                             name=f"swain-invalidation-{transport.name}"))
        try:
            if connected:
                waits = asyncio.gather(*(ready.wait() for ready in connected))
                try:
                    await asyncio.wait_for(waits, timeout)
                except TimeoutError:
                    log.warning("invalidation: not every transport listens yet; until it does, "
                                "changes made elsewhere apply when caches expire")
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await self.close()

    async def close(self) -> None:
        for transport in self.transports:
            try:
                await transport.close()
            except Exception as exc:
                log.warning("invalidation transport %s did not close cleanly (%s)",
                            transport.name, type(exc).__name__)


#: the runtime's bus; core provides it on every runtime
INVALIDATION: ServiceKey[InvalidationBus] = ServiceKey("swain.invalidation", provider="core")


K = TypeVar("K")
V = TypeVar("V")


class Missing(enum.Enum):
    """What :meth:`TimedCache.fresh` answers for a key it holds no live entry for."""

    MISSING = "missing"


MISSING = Missing.MISSING


class TimedCache(Generic[K, V]):
    """Values kept for ``ttl`` seconds (``0``: not at all), at most ``limit`` of them,
    and dropped by invalidations.

    A value whose load began before an invalidation arrived is not kept: it may
    have been read before the change committed, and would otherwise outlive the
    message that was meant to end it::

        found = cache.fresh(key)
        if found is MISSING:
            since = cache.epoch
            found = await load()
            cache.put(key, found, since)
    """

    def __init__(self, ttl: float, limit: int = 10_000) -> None:
        self.ttl = ttl
        self.limit = limit
        self.epoch = 0
        self._entries: dict[K, tuple[float, V]] = {}

    def fresh(self, key: K) -> V | Missing:
        found = self._entries.get(key)
        if found is None or found[0] <= time.monotonic():
            return MISSING
        return found[1]

    def put(self, key: K, value: V, since: int) -> None:
        """Keep ``value``, loaded since :attr:`epoch` was ``since``, unless an
        invalidation came in between."""
        if self.ttl <= 0 or since != self.epoch:
            return
        now = time.monotonic()
        if len(self._entries) >= self.limit:
            self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
            if len(self._entries) >= self.limit:
                self._entries.clear()
        self._entries[key] = (now + self.ttl, value)

    def forget(self, text: str | None, key_of: Callable[[K, V], Any]) -> None:
        """Drop the entries whose ``key_of(key, value)`` reads as ``text`` (messages
        carry keys as text), or all of them for ``None``; loads under way are not kept."""
        self.epoch += 1
        if text is None:
            self._entries.clear()
            return
        for key in [k for k, (_, v) in self._entries.items() if str(key_of(k, v)) == text]:
            self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)


__all__ = ["EVERYTHING", "INVALIDATION", "MISSING", "Invalidation", "InvalidationBus",
           "InvalidationTransport", "TimedCache", "Watch"]
