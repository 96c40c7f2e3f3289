"""Rate limits on login, signup, password reset, refresh and logout: per client
address and (where there is one) per account, answered with 429 and ``Retry-After``.

Counters are fixed windows, kept in memory by default (one process) or in
Redis when ``[rate_limit] redis_url`` is set, so several instances share
them.  A limit is written ``"<count>/<duration>"`` (``"10/1m"``).

The client address is the peer's, unless the peer is one of
``trusted_proxies`` (addresses or networks): then it is the right-most
``X-Forwarded-For`` entry that is not itself a trusted proxy.  A client can
therefore not choose its own address by sending the header.

If Redis is unreachable the request is let through and the failure logged:
an outage of the counter store must not lock every user out.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import re
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any

from aiohttp import web

from swain.core import RUNTIME, Config, ConfigError, RateLimited, Runtime, Setting, hookimpl
from swain.core.config import parse_duration

from .service import LIMITER, auth_active

#: the account service asks the limiter before every login, signup and reset
requires = ("jwt",)

log = logging.getLogger("swain")
#: action -> (per-client limit, per-account limit); refresh and logout name no account
DEFAULTS: dict[str, tuple[str, str | None]] = {
    "login": ("60/1m", "10/1m"), "signup": ("20/1h", "5/1h"), "reset": ("20/1h", "5/1h"),
    "refresh": ("60/1m", None), "logout": ("60/1m", None)}
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_limit(text: str, path: str) -> tuple[int, float]:
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(.+)", str(text))
    if not match or int(match.group(1)) < 1:
        raise ConfigError(f"{path}: expected <count>/<duration> like 10/1m, got {text!r}")
    return int(match.group(1)), max(1.0, parse_duration(match.group(2), path))


class MemoryCounter:
    def __init__(self) -> None:
        self._counts: dict[str, tuple[int, float]] = {}

    async def hit(self, key: str, window: float) -> tuple[int, float]:
        now = time.time()
        count, ends = self._counts.get(key, (0, 0.0))
        if ends <= now:
            count, ends = 0, (math.floor(now / window) + 1) * window
            if len(self._counts) > 100_000:
                self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
        self._counts[key] = (count + 1, ends)
        return count + 1, ends - now

    async def close(self) -> None:
        return None


class RedisCounter:
    def __init__(self, url: str, prefix: str) -> None:
        import redis.asyncio as redis

        self.client = redis.from_url(url)
        self.prefix = prefix

    async def hit(self, key: str, window: float) -> tuple[int, float]:
        name = self.prefix + key
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.set(name, 0, ex=math.ceil(window), nx=True)
            pipe.incr(name)
            pipe.ttl(name)
            _, count, ttl = await pipe.execute()
        return count, float(ttl if ttl and ttl > 0 else window)

    async def close(self) -> None:
        await self.client.aclose()


class Limiter:
    """The ``LIMITER`` service: the account service calls :meth:`hit` per attempt."""

    def __init__(self, config: Config, counter: MemoryCounter | RedisCounter) -> None:
        section = config.rate_limit
        self.counter = counter
        self.limits: dict[tuple[str, str], tuple[int, float]] = {}
        for action, (_client, per_account) in DEFAULTS.items():
            for scope in ("client", "account") if per_account else ("client",):
                key = f"{action}_per_{scope}"
                self.limits[(action, scope)] = parse_limit(section[key], f"rate_limit.{key}")
        self.proxies: list[Network] = []
        for entry in section.trusted_proxies:
            try:
                self.proxies.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise ConfigError(f"rate_limit.trusted_proxies: {entry!r} is not an address or "
                                  "network") from None

    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.strip())
        except ValueError:
            return False
        return any(ip in network for network in self.proxies)

    def client_address(self, request: web.Request) -> str:
        remote = request.remote or ""
        if not self.proxies or not self._trusted(remote):
            return remote
        forwarded = ",".join(request.headers.getall("X-Forwarded-For", []))
        hops = [h.strip() for h in forwarded.split(",") if h.strip()]
        for hop in reversed(hops):
            if not self._trusted(hop):
                return hop
        return remote

    async def hit(self, request: web.Request, action: str, account: str | None) -> None:
        """Count an attempt against the client's limit and, where the action names an
        account, against the limit of the name given."""
        await self._count(action, "client", self.client_address(request))
        if account:
            await self._count(action, "account", account)

    async def hit_user(self, action: str, user_id: object, name: str) -> None:
        """Count an attempt against the account it reached: the same account reached by
        its email and by its username (or any spelling) shares one counter.  A name
        that reached no account is counted under itself, so that every attempt costs
        the same whether the account exists or not."""
        who = f"id:{user_id}" if user_id is not None else f"name:{name.strip().lower()}"
        await self._count(action, "user", who)

    async def _count(self, action: str, scope: str, who: str) -> None:
        limit = self.limits.get((action, "account" if scope == "user" else scope))
        if limit is None:
            return
        allowed, window = limit
        try:
            count, remaining = await self.counter.hit(f"{action}:{scope}:{who}", window)
        except Exception as exc:
            log.error("rate limit store unavailable (%s: %s); letting the request through",
                      type(exc).__name__, exc)
            return
        if count > allowed:
            retry = max(1, math.ceil(remaining))
            raise RateLimited(f"too many {action} attempts; retry in {retry} seconds",
                              headers={"Retry-After": str(retry)})


def _enabled(config: Config) -> bool:
    return auth_active(config) and bool(config.rate_limit.enabled)


@hookimpl
def swain_startup(runtime: Runtime) -> None:
    config = runtime.config
    if not _enabled(config):
        return
    section = config.rate_limit
    counter: MemoryCounter | RedisCounter = (
        RedisCounter(section.redis_url, section.key_prefix) if section.redis_url
        else MemoryCounter())
    runtime.services.provide(LIMITER, Limiter(config, counter))
    workers = int(config.server.workers)
    if workers > 1 and not section.redis_url:
        log.warning("rate_limit: counters are kept in memory by each of the %d workers, so a "
                    "client gets up to %d times each limit; set [rate_limit] redis_url to share "
                    "them", workers, workers)


async def _close_counter(app: web.Application) -> AsyncIterator[None]:
    yield
    limiter = app[RUNTIME].services.get(LIMITER)
    assert isinstance(limiter, Limiter)
    await limiter.counter.close()


@hookimpl
def swain_config_sections() -> dict[str, dict[str, Setting]]:
    settings = {
        "enabled": Setting("bool", True),
        "redis_url": Setting("str", None, secret=True,
                             doc="share counters between instances, e.g. redis://127.0.0.1:6379/0"),
        "key_prefix": Setting("str", "swain:rl:"),
        "trusted_proxies": Setting("list", [], doc="addresses allowed to set X-Forwarded-For"),
    }
    for action, (client, account) in DEFAULTS.items():
        settings[f"{action}_per_client"] = Setting("str", client)
        if account:
            settings[f"{action}_per_account"] = Setting("str", account)
    return {"rate_limit": settings}


@hookimpl
def swain_cleanup_ctx(config: Config) -> Iterable[Any]:
    return [_close_counter] if _enabled(config) else []
