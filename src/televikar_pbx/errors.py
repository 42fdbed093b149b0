"""The project's own exception types; adapters translate third-party errors into these.

TelevikarError
├── ConfigError            settings or input that cannot work
├── AriError               a request to Asterisk's REST interface failed
│   ├── AriUnavailable     Asterisk cannot be reached (connection refused, timeout)
│   └── AriNotFound        the channel/bridge is gone (a normal race with hang-ups)
├── StoreError             the database refused or could not be reached
└── MailError              the SMTP server could not be reached or refused an e-mail
"""


class TelevikarError(Exception):
    """Base of every error this project raises on purpose."""


class ConfigError(TelevikarError):
    """Settings or input that cannot work; the message says which and why."""


class AriError(TelevikarError):
    """A request to Asterisk's REST interface failed."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AriUnavailable(AriError):
    """Asterisk's HTTP server cannot be reached."""


class AriNotFound(AriError):
    """The object is gone: usually a channel that hung up while we acted on it."""


class StoreError(TelevikarError):
    """The database refused the write or could not be reached."""


class MailError(TelevikarError):
    """An e-mail was not handed over: the SMTP server could not be reached, the TLS
    handshake or login failed, or it refused the message or every recipient."""
