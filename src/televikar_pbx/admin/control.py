"""Telling the running service about an agent's new state, over its loopback control
API (``POST http://127.0.0.1:{control_port}/agents/{id}/{action}``).

The state is in the database already; the service reads it at start. So "nothing
listens" is no error (``notify_agent`` returns False), while a service that answers
with an error, or does not answer in time, is one (``ControlError``).
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from typing import IO, Any, NoReturn

from televikar_pbx.errors import TelevikarError

TIMEOUT_S = 2.0


class ControlError(TelevikarError):
    """The running service refused the request or did not answer."""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A redirect from our own loopback service is an error, not something to follow
    # (urllib would turn the POST into a GET).
    def redirect_request(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise urllib.error.URLError("the control API answered with a redirect")


# No proxies: urllib honours http_proxy, and a proxy must never see loopback calls.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects())


def notify_agent(port: int, agent_id: int, action: str, *, timeout_s: float = TIMEOUT_S) -> bool:
    """POST the action; True if the service took it, False if no service is running."""
    return _post(port, f"agents/{agent_id}/{action}", timeout_s)


def notify_reload(port: int, *, timeout_s: float = 10.0) -> bool:
    """Ask the running service to re-read customers and agents (and so Asterisk's agent
    endpoints and hints); False if no service is running."""
    return _post(port, "reload", timeout_s)


def reload_after_change(port: int) -> None:
    """After a directory change: reload the running service, or say why it did not.

    The change is saved either way, so this never fails the command."""
    try:
        if notify_reload(port):
            print("the running service reloaded")
    except ControlError as exc:
        print(
            f"televikar-pbx: saved, but the running service did not reload: {exc}", file=sys.stderr
        )


def _post(port: int, path: str, timeout_s: float) -> bool:
    url = f"http://127.0.0.1:{port}/{path}"
    request = urllib.request.Request(url, data=b"", method="POST")
    try:
        with _OPENER.open(request, timeout=timeout_s) as response:
            status = response.status
            if not 200 <= status < 300:
                raise ControlError(f"HTTP {status}{_reason(response)}")
            return True
    except urllib.error.HTTPError as exc:
        with exc:  # it holds the connection
            raise ControlError(f"HTTP {exc.code}{_reason(exc)}") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, ConnectionRefusedError):
            return False
        if isinstance(exc.reason, TimeoutError):
            raise ControlError(f"no answer within {timeout_s:g} s") from None
        raise ControlError(f"{exc.reason}") from None
    except TimeoutError:  # while reading the response
        raise ControlError(f"no answer within {timeout_s:g} s") from None
    except OSError as exc:
        raise ControlError(str(exc) or type(exc).__name__) from None


def _reason(response: IO[bytes]) -> str:
    try:
        body = response.read(300).decode("utf-8", "replace").strip()
    except OSError:
        return ""
    first = body.splitlines()[0] if body else ""
    return f": {first}" if first else ""
