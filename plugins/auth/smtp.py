"""Email transports: ``smtp`` (aiosmtplib; STARTTLS, implicit TLS
or plain; optional login), and ``console`` and ``file`` for development.

:class:`Mailer` wraps the configured transport with retries and exponential
backoff; a message that still cannot be sent is logged as an error (never
lost silently) and the caller's answer does not change.
"""

from __future__ import annotations

import asyncio
import email.message
import email.utils
import logging
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiosmtplib

from swain.core import Config, ConfigError, EmailMessage, EmailTransport, Setting, hookimpl

log = logging.getLogger("swain.email")


def _mime(config: Config, message: EmailMessage) -> email.message.EmailMessage:
    smtp = config.smtp
    mime = email.message.EmailMessage()
    mime["From"] = email.utils.formataddr((smtp.from_name or "", smtp.from_address))
    mime["To"] = message.to
    mime["Subject"] = message.subject
    mime["Date"] = email.utils.formatdate(localtime=False)
    mime["Message-ID"] = email.utils.make_msgid(domain=smtp.from_address.rpartition("@")[2] or None)
    mime.set_content(message.text)
    if message.html:
        mime.add_alternative(message.html, subtype="html")
    return mime


class SmtpTransport:
    """Sends through an SMTP server with aiosmtplib."""

    def __init__(self, config: Config) -> None:
        self.config = config

    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if self.config.smtp.ca_file:
            ca_file = self.config.base_dir / self.config.smtp.ca_file
            context.load_verify_locations(cafile=str(ca_file))
        return context

    async def send(self, message: EmailMessage) -> None:
        smtp = self.config.smtp
        security = smtp.security
        await aiosmtplib.send(
            _mime(self.config, message), hostname=smtp.host, port=smtp.port or
            {"tls": 465, "starttls": 587}.get(security, 25),
            username=smtp.username or None, password=smtp.password or None,
            use_tls=security == "tls", start_tls=security == "starttls",
            tls_context=self._tls_context() if security != "none" else None,
            timeout=smtp.timeout)


class ConsoleTransport:
    """Writes each message to the log (development)."""

    def __init__(self, config: Config) -> None:
        self.config = config

    async def send(self, message: EmailMessage) -> None:
        log.info("email to %s: %s\n%s", message.to, message.subject, message.text)


class FileTransport:
    """Appends each message to ``smtp.file_path`` (development and tests)."""

    def __init__(self, config: Config) -> None:
        self.config = config

    async def send(self, message: EmailMessage) -> None:
        path = self.config.base_dir / Path(self.config.smtp.file_path)
        text = _mime(self.config, message).as_string()

        def write() -> None:
            with path.open("a", encoding="utf-8") as out:
                out.write(text + "\n\n")

        await asyncio.get_running_loop().run_in_executor(None, write)


class Mailer:
    """The chosen transport, with retries and backoff; :meth:`deliver` never raises."""

    def __init__(self, transport: EmailTransport, name: str, retries: int, backoff: float) -> None:
        self.transport = transport
        self.name = name
        self.retries = retries
        self.backoff = backoff

    async def deliver(self, message: EmailMessage) -> bool:
        delay = self.backoff
        for attempt in range(1, self.retries + 2):
            try:
                await self.transport.send(message)
                return True
            except Exception as exc:
                if attempt > self.retries:
                    log.error("email to %s (%s) could not be sent through %s after %d attempts: "
                              "%s: %s", message.to, message.subject, self.name, attempt,
                              type(exc).__name__, exc)
                    return False
                log.warning("email to %s: attempt %d through %s failed (%s); retrying in %.2fs",
                            message.to, attempt, self.name, type(exc).__name__, delay)
                await asyncio.sleep(delay)
                delay *= 2
        return False


def transport_name(config: Config) -> str:
    smtp = config.smtp
    return smtp.transport or ("smtp" if smtp.host else "console")


def mailer(config: Config, transports: Mapping[str, EmailTransport]) -> Mailer:
    name = transport_name(config)
    transport = transports.get(name)
    if transport is None:
        raise ConfigError(f"smtp.transport: no enabled plugin provides the {name!r} transport "
                          f"(available: {', '.join(sorted(transports)) or 'none'})")
    if name == "smtp":
        if not config.smtp.host:
            raise ConfigError("smtp.host: required for the smtp transport")
        if not config.smtp.from_address:
            raise ConfigError("smtp.from_address: required to send email")
    if name == "file" and not config.smtp.file_path:
        raise ConfigError("smtp.file_path: required for the file transport")
    return Mailer(transport, name, config.smtp.retries, float(config.smtp.retry_backoff))


@hookimpl
def swain_config_sections() -> dict[str, dict[str, Setting]]:
    return {"smtp": {
        "transport": Setting("str", None, doc="smtp, console, file or one a plugin adds "
                                              "(swain_email_transports); default: smtp when "
                                              "host is set, else console"),
        "host": Setting("str", None),
        "port": Setting("int", None, minimum=1),
        "security": Setting("str", "starttls", choices=("starttls", "tls", "none")),
        "username": Setting("str", None),
        "password": Setting("str", None, secret=True),
        "ca_file": Setting("str", None, doc="extra CA certificates to trust (PEM)"),
        "timeout": Setting("duration", 10.0, minimum=0.1),
        "retries": Setting("int", 3, minimum=0),
        "retry_backoff": Setting("duration", 1.0, minimum=0),
        "from_address": Setting("str", "no-reply@localhost"),
        "from_name": Setting("str", None),
        "file_path": Setting("str", None, doc="where the file transport appends messages"),
        "base_url": Setting("str", None, doc="the front end's origin, for links in emails"),
        "password_reset_path": Setting("str", "/reset-password?token=%s",
                                       doc="appended to base_url; %s becomes the token"),
    }}


@hookimpl
def swain_email_transports(config: Config) -> dict[str, Any]:
    return {"smtp": SmtpTransport(config), "console": ConsoleTransport(config),
            "file": FileTransport(config)}
