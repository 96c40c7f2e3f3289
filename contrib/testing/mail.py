"""A local SMTP server for tests: aiosmtpd on a free port, keeping what it receives.

``with smtp_server() as (port, inbox):`` serves until the block ends; point
``[smtp]`` at ``127.0.0.1:port`` (``security = "none"``) and read
``inbox.messages`` or wait with :meth:`Inbox.wait_for`.  Needs ``aiosmtpd``
(swain's ``test`` extra).
"""

from __future__ import annotations

import email
import email.policy
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from typing import Any

from . import free_port


class Inbox:
    """The messages an SMTP server received, parsed, oldest first."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 OK"

    def wait_for(self, to: str, count: int = 1, timeout: float = 15) -> list[EmailMessage]:
        """The messages to ``to`` once there are ``count`` of them (AssertionError after
        ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [m for m in self.messages if m["To"] == to]
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"no email to {to} after {timeout}s")


@contextmanager
def smtp_server(port: int | None = None, inbox: Inbox | None = None,
                **options: Any) -> Iterator[tuple[int, Inbox]]:
    """An aiosmtpd server on a loopback ``port`` (a free one by default) filling
    ``inbox`` (a new one by default); ``options`` go to its Controller (an
    ``authenticator``, TLS settings ...)."""
    from aiosmtpd.controller import Controller

    inbox = inbox or Inbox()
    port = port or free_port()  # aiosmtpd cannot bind port 0 itself
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()
