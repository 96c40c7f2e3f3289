"""Email transports against real local servers: aiosmtpd with STARTTLS and
with implicit TLS (a throwaway CA), login, and the file and console
transports.  No database is involved."""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import ipaddress
import logging
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from swain.contrib.testing import free_port, write_config
from swain.core import Config, EmailMessage, load_config
from swain.plugins.auth.smtp import (
    ConsoleTransport,
    FileTransport,
    Mailer,
    SmtpTransport,
    mailer,
)

MESSAGE = EmailMessage(to="someone@example.com", subject="Hello", text="Body text ✓")


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((session.authenticated, session.ssl is not None,
                              email.message_from_bytes(envelope.content,
                                                       policy=email.policy.default)))
        return "250 OK"


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str,
                   auth_data: Any) -> AuthResult:
    return AuthResult(success=isinstance(auth_data, LoginPassword)
                      and auth_data.login == b"user" and auth_data.password == b"pass")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA)."""
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def _server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(certificate[0]), str(certificate[1]))
    return context


@pytest.fixture
def starttls_server(certificate: tuple[Path, Path]) -> Iterator[tuple[int, Inbox]]:
    inbox, port = Inbox(), free_port()  # aiosmtpd cannot bind port 0 itself
    controller = Controller(inbox, hostname="127.0.0.1", port=port,
                            tls_context=_server_context(certificate), require_starttls=True,
                            authenticator=_authenticator, auth_required=True)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


@pytest.fixture
def tls_server(certificate: tuple[Path, Path]) -> Iterator[tuple[int, Inbox]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port,
                            ssl_context=_server_context(certificate),
                            # The whole connection is TLS; aiosmtpd only knows about STARTTLS.
                            authenticator=_authenticator, auth_required=True,
                            auth_require_tls=False)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


def _config(tmp_path: Path, **smtp: Any) -> Config:
    path = write_config(tmp_path, f"sqlite:///{tmp_path / 'unused.db'}",
                        smtp={"from_address": "no-reply@shop.example", "from_name": "Shop",
                              **smtp})
    config, _ = load_config(path, "development", environ={})
    return config


def test_starttls_with_login(tmp_path: Path, certificate: tuple[Path, Path],
                             starttls_server: tuple[int, Inbox]) -> None:
    port, inbox = starttls_server
    config = _config(tmp_path, host="127.0.0.1", port=port, security="starttls",
                     username="user", password="pass", ca_file=str(certificate[0]))
    asyncio.run(SmtpTransport(config).send(MESSAGE))
    [(authenticated, _, message)] = inbox.messages
    assert authenticated
    assert message["From"] == "Shop <no-reply@shop.example>"
    assert message["To"] == "someone@example.com" and message.get_content().strip() == "Body text ✓"


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
def test_implicit_tls_with_login(tmp_path: Path, certificate: tuple[Path, Path],
                                 tls_server: tuple[int, Inbox]) -> None:
    port, inbox = tls_server
    config = _config(tmp_path, host="127.0.0.1", port=port, security="tls",
                     username="user", password="pass", ca_file=str(certificate[0]))
    asyncio.run(SmtpTransport(config).send(MESSAGE))
    [(authenticated, _, message)] = inbox.messages
    assert authenticated and message["Subject"] == "Hello"
    # The port speaks TLS only: a plain-text client gets nowhere.
    plain = _config(tmp_path, host="127.0.0.1", port=port, security="none", timeout="2s",
                    username="user", password="pass")
    with pytest.raises(Exception):  # noqa: B017 - any failure will do; none must deliver
        asyncio.run(SmtpTransport(plain).send(MESSAGE))
    assert len(inbox.messages) == 1


def test_untrusted_certificate_fails_loudly_after_retries(
        tmp_path: Path, starttls_server: tuple[int, Inbox],
        caplog: pytest.LogCaptureFixture) -> None:
    port, inbox = starttls_server
    config = _config(tmp_path, host="127.0.0.1", port=port, security="starttls",
                     username="user", password="pass", retries=2, retry_backoff="0.05s")
    sender = mailer(config, {"smtp": SmtpTransport(config)})
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="swain.email"):
        assert asyncio.run(sender.deliver(MESSAGE)) is False
    assert time.monotonic() - started >= 0.15  # 0.05s, then 0.1s of backoff
    assert inbox.messages == []
    [error] = [r for r in caplog.records if r.levelno == logging.ERROR and r.name == "swain.email"]
    assert "someone@example.com" in error.getMessage() and "3 attempts" in error.getMessage()


def test_file_and_console_transports(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = _config(tmp_path, transport="file", file_path="outbox.txt")
    sender = mailer(config, {"file": FileTransport(config), "console": ConsoleTransport(config)})
    assert isinstance(sender, Mailer) and sender.name == "file"
    assert asyncio.run(sender.deliver(MESSAGE)) is True
    written = (tmp_path / "outbox.txt").read_text(encoding="utf-8")
    parsed = email.message_from_string(written.strip(), policy=email.policy.default)
    assert parsed["To"] == "someone@example.com" and "Body text ✓" in parsed.get_content()
    console = _config(tmp_path)
    with caplog.at_level(logging.INFO, logger="swain.email"):
        asyncio.run(mailer(console, {"console": ConsoleTransport(console)}).deliver(MESSAGE))
    assert any("someone@example.com" in r.getMessage() and "Body text" in r.getMessage()
               for r in caplog.records)
