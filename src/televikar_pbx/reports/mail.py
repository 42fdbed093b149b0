"""Our one adapter over SMTP: hand an ``EmailMessage`` to the configured server.

stdlib ``smtplib`` is blocking; ``send`` runs it in a worker thread with the socket
timeout of the settings, so the event loop is never held by a slow server. Whatever goes
wrong (connection refused, TLS handshake or certificate, login, a refusal, a timeout)
comes out as one ``MailError`` whose message is one line naming the server.

The server's certificate is always verified (``starttls`` and ``tls``): against the
system's CAs, or only those of ``smtp_ca_file`` when it is set. ``none`` is plain text,
for a relay on the same host; a login is refused there, as it would send the password
in clear.
"""

from __future__ import annotations

import asyncio
import contextlib
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Literal

from televikar_pbx.errors import ConfigError, MailError
from televikar_pbx.settings import Settings

Security = Literal["starttls", "tls", "none"]


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    port: int
    security: Security
    sender: str
    username: str | None = None
    password: str = ""
    timeout_s: float = 30.0
    ca_file: Path | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpConfig:
        """The SMTP settings; ConfigError when they are missing or cannot work."""
        if not settings.smtp_host or not settings.smtp_from:
            raise ConfigError(
                "SMTP is not configured: set TELEVIKAR_SMTP_HOST and TELEVIKAR_SMTP_FROM "
                "(and the other TELEVIKAR_SMTP_ settings, see README)"
            )
        if settings.smtp_username and settings.smtp_security == "none":
            raise ConfigError(
                "TELEVIKAR_SMTP_USERNAME is set with TELEVIKAR_SMTP_SECURITY=none: the "
                "password would cross the network in clear; use starttls or tls"
            )
        if settings.smtp_ca_file is not None and not settings.smtp_ca_file.is_file():
            raise ConfigError(f"TELEVIKAR_SMTP_CA_FILE {settings.smtp_ca_file}: no such file")
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            security=settings.smtp_security,
            sender=settings.smtp_from,
            username=settings.smtp_username or None,
            password=settings.smtp_password.get_secret_value(),
            timeout_s=settings.smtp_timeout_s,
            ca_file=settings.smtp_ca_file,
        )

    @property
    def server(self) -> str:
        return f"{self.host}:{self.port}"


async def send(config: SmtpConfig, message: EmailMessage) -> str | None:
    """Send ``message`` to its To addresses. Returns None, or a line naming the
    recipients the server refused while it accepted others; MailError when nobody
    gets it."""
    return await asyncio.to_thread(_send_blocking, config, message)


def _tls_context(config: SmtpConfig) -> ssl.SSLContext:
    # Hostname checks and CERT_REQUIRED are create_default_context's defaults; a cafile
    # replaces the system's CAs.
    return ssl.create_default_context(cafile=config.ca_file)


def _connect(config: SmtpConfig) -> tuple[smtplib.SMTP, ssl.SSLContext | None]:
    context = None if config.security == "none" else _tls_context(config)
    if config.security == "tls":
        client: smtplib.SMTP = smtplib.SMTP_SSL(
            config.host, config.port, timeout=config.timeout_s, context=context
        )
    else:
        client = smtplib.SMTP(config.host, config.port, timeout=config.timeout_s)
    return client, context


async def reachable(config: SmtpConfig) -> bool:
    """Whether the server answers: a connection, its greeting and a NOOP (no login, no
    message). The delivery worker asks this while the server is away."""
    return await asyncio.to_thread(_reachable_blocking, config)


def _reachable_blocking(config: SmtpConfig) -> bool:
    try:
        client, _ = _connect(config)
        try:
            code, _ = client.noop()
            with contextlib.suppress(smtplib.SMTPException, OSError):
                client.quit()
            return code == 250
        finally:
            client.close()
    except (smtplib.SMTPException, OSError):
        return False


def _send_blocking(config: SmtpConfig, message: EmailMessage) -> str | None:
    try:
        client, context = _connect(config)
        # Not ``with client``: its QUIT on the way out, on a connection a failed TLS
        # handshake left broken, would raise in place of the error that matters.
        try:
            if config.security == "starttls":
                client.starttls(context=context)
            if config.username:
                client.login(config.username, config.password)
            refused = client.send_message(message, from_addr=config.sender)
            with contextlib.suppress(smtplib.SMTPException, OSError):
                client.quit()  # the message is accepted: a rude goodbye changes nothing
        finally:
            client.close()
    except (smtplib.SMTPException, OSError) as exc:
        raise MailError(f"SMTP {config.server}: {_describe(exc)}") from exc
    if not refused:
        return None
    return "refused " + "; ".join(
        f"{address} ({_reply(code, text)})" for address, (code, text) in refused.items()
    )


def _reply(code: int, text: bytes | str) -> str:
    shown = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return " ".join(f"{code} {shown}".split())


def _describe(exc: BaseException) -> str:
    """One line: the server's reply, else what the socket or TLS layer said."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "refused every recipient: " + "; ".join(
            f"{address} ({_reply(code, text)})" for address, (code, text) in exc.recipients.items()
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        return _reply(exc.smtp_code, exc.smtp_error)
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return f"the server does not offer it: {exc}"
    if isinstance(exc, TimeoutError):
        return "no answer within the timeout (TELEVIKAR_SMTP_TIMEOUT_S)"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted: {exc.verify_message} (TELEVIKAR_SMTP_CA_FILE?)"
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
