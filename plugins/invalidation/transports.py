"""Transports of the invalidation bus: PostgreSQL ``LISTEN/NOTIFY`` and Redis pub/sub.

Both listen on one connection of their own, kept apart from the request
pool, and reconnect by themselves after a growing pause; each (re)connection
is delivered as ``*``, so an instance that missed messages while it was cut
off forgets every cached entry rather than serving stale ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Callable
from typing import Any

from sqlalchemy.engine import URL

from swain.core import Dialect
from swain.core.invalidation import EVERYTHING, Invalidation

log = logging.getLogger("swain")
#: the pause before reconnecting doubles from the first to the last
_PAUSES = (0.1, 5.0)

Deliver = Callable[[Invalidation], None]


async def _keep_listening(name: str, connect: Callable[[], AsyncGenerator[str | None, None]],
                          deliver: Deliver) -> None:
    """Run ``connect()``'s listener, again and again: ``None`` means connected."""
    pause = _PAUSES[0]
    lost = False
    while True:
        try:
            async with contextlib.aclosing(connect()) as messages:
                async for text in messages:
                    if text is None:
                        if lost:
                            log.info("invalidation: %s listens again", name)
                        lost, pause = False, _PAUSES[0]
                        deliver(Invalidation(EVERYTHING))
                        continue
                    message = Invalidation.decode(text)
                    if message is None:
                        log.warning("invalidation: ignored a malformed message on %s", name)
                    else:
                        deliver(message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not lost:
                log.warning("invalidation: lost the %s listener (%s); retrying, and until it "
                            "is back changes made elsewhere apply when caches expire", name,
                            type(exc).__name__)
            lost = True
        await asyncio.sleep(pause)
        pause = min(pause * 2, _PAUSES[1])


class DatabaseTransport:
    """The database's own notifications (``Dialect.supports_notifications``)."""

    name = "database"

    def __init__(self, dialect: Dialect, channel: str, listen_url: URL | None,
                 heartbeat: float) -> None:
        self.dialect = dialect
        self.channel = channel
        self.listen_url = listen_url
        self.heartbeat = heartbeat

    async def send(self, message: Invalidation) -> None:
        await self.dialect.notify(self.channel, message.encode())

    async def listen(self, deliver: Deliver) -> None:
        await _keep_listening(self.name, lambda: self.dialect.listen(
            self.channel, self.listen_url, self.heartbeat), deliver)

    async def close(self) -> None:
        return None


class RedisTransport:
    """Redis pub/sub: for databases without notifications, or to keep them off the
    database."""

    name = "redis"

    def __init__(self, url: str, channel: str, heartbeat: float) -> None:
        self.url = url
        self.channel = channel
        self.heartbeat = heartbeat
        self._client: Any = None

    def _connect(self) -> Any:
        import redis.asyncio as redis

        return redis.from_url(self.url, health_check_interval=self.heartbeat,
                              socket_connect_timeout=5, socket_timeout=self.heartbeat + 5)

    async def send(self, message: Invalidation) -> None:
        if self._client is None:
            self._client = self._connect()
        await self._client.publish(self.channel, message.encode())

    async def _messages(self) -> AsyncGenerator[str | None, None]:
        client = self._connect()
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self.channel)
            yield None
            while True:
                found = await pubsub.get_message(timeout=self.heartbeat)
                if found is None:
                    await pubsub.ping()  # a silent network: ask
                    continue
                data = found.get("data")
                if found.get("type") == "message" and isinstance(data, bytes):
                    yield data.decode("utf-8", "replace")
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()
            await client.aclose()

    async def listen(self, deliver: Deliver) -> None:
        await _keep_listening(self.name, self._messages, deliver)

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()
