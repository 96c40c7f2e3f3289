"""A TCP proxy that tests can cut, silence and restore, to simulate database outages.

Put it between a server and its database (point the connection URL at
:attr:`TcpProxy.port`), then:

* :meth:`~TcpProxy.cut` drops every open connection and refuses new ones, as
  a database that went away does;
* :meth:`~TcpProxy.blackhole` keeps every link open but lets nothing through
  in either direction, and new connections are accepted but never answered:
  a database that stopped answering (a network partition, a hung server);
* :meth:`~TcpProxy.restore` ends either state (data held back by a blackhole
  is then delivered, as TCP would once a partition heals).

It runs its own event loop in a background thread, so synchronous tests can
drive it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

from . import free_port


class TcpProxy:
    """Forward ``127.0.0.1:port`` to ``target_host:target_port``."""

    def __init__(self, target_host: str, target_port: int, port: int | None = None) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.port = port or free_port()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True,
                                        name=f"tcp-proxy-{self.port}")
        self._server: asyncio.Server | None = None
        self._transports: set[asyncio.WriteTransport] = set()
        #: set while data may flow; cleared by :meth:`blackhole`
        self._flowing: asyncio.Event | None = None
        #: connections accepted since the proxy started (for assertions)
        self.accepted = 0

    # -- control, from any thread ---------------------------------------------

    def start(self, listening: bool = True) -> TcpProxy:
        """Start the loop; ``listening=False`` starts in the cut state (database down)."""
        if self._thread.is_alive():
            return self
        self._thread.start()
        if listening:
            self.restore()
        return self

    def cut(self) -> None:
        """Close every proxied connection and refuse new ones."""
        self._call(self._cut())

    def restore(self) -> None:
        """Accept connections again (on the same port) and let data flow."""
        self._call(self._listen())
        self._call(self._set_flowing(True))

    def blackhole(self) -> None:
        """Hold every byte in both directions, on open and new connections alike."""
        self._call(self._set_flowing(False))

    @property
    def silent(self) -> bool:
        return self._flowing is not None and not self._flowing.is_set()

    @property
    def listening(self) -> bool:
        return self._server is not None

    def stop(self) -> None:
        if self._thread.is_alive():
            self._call(self._shutdown())
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)
        self.loop.close()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=30)

    # -- the proxy itself, on its loop -----------------------------------------------

    async def _set_flowing(self, flowing: bool) -> None:
        if self._flowing is None:
            self._flowing = asyncio.Event()
            self._flowing.set()
        if flowing:
            self._flowing.set()
        else:
            self._flowing.clear()

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port,
                                                      reuse_address=True)

    async def _cut(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for transport in list(self._transports):
            transport.abort()  # a reset, not a polite close: the peer sees the link die
        self._transports.clear()

    async def _shutdown(self) -> None:
        await self._set_flowing(True)  # held pumps wake up and end on their aborted links
        await self._cut()
        # aborted transports end their pumps; give them a moment to finish cleanly
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=2)
            for task in pending:
                task.cancel()

    async def _accept(self, client_reader: asyncio.StreamReader,
                      client_writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        client = client_writer.transport
        self._transports.add(client)
        await self._wait_flowing()
        if self._server is None:  # cut (or shut down) while the link was silent
            client.abort()
            self._transports.discard(client)
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                self.target_host, self.target_port)
        except OSError:
            client.abort()
            self._transports.discard(client)
            return
        upstream = upstream_writer.transport
        self._transports.add(upstream)
        if self._server is None:  # cut while we were connecting
            await self._cut()
            return
        try:
            await asyncio.gather(self._pump(client_reader, upstream_writer),
                                 self._pump(upstream_reader, client_writer))
        finally:
            for transport in (client, upstream):
                transport.abort()
                self._transports.discard(transport)

    async def _wait_flowing(self) -> None:
        if self._flowing is not None:
            await self._flowing.wait()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                await self._wait_flowing()
                writer.write(data)
                await writer.drain()
        with contextlib.suppress(ConnectionError, OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()
