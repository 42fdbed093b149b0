"""Agent phone reachability from AMI (panoramisk), reported per PJSIP endpoint.

A phone is reachable while its AOR has a contact that is not ``Unreachable``: a static
contact (the lab's sipp phones, unqualified), or a registration (``ContactStatus``
events: Created, Reachable, Updated, NonQualified, Unreachable, Removed). After every
(re)login the full picture is read again (``PJSIPShowAors``, ``PJSIPShowContacts``, and
``PJSIPShowEndpoints`` for qualified static contacts), so
events missed while AMI was down cannot leave a stale state behind.

panoramisk reconnects after a fixed delay; :class:`_Manager` turns that into an
exponential backoff and stops reconnecting once closed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import structlog
from panoramisk import Manager

from televikar_pbx.errors import TelevikarError

log = structlog.get_logger("televikar_pbx.ami")

ReachabilityCallback = Callable[[str, bool], None]


class AmiError(TelevikarError):
    """An AMI action failed."""


BAD_STATUSES = {"Unreachable", "Removed"}


class _Manager(Manager):  # type: ignore[misc]
    """panoramisk's Manager with backoff, and no reconnect after close()."""

    def __init__(self, *, max_delay_s: float, **config: Any) -> None:
        super().__init__(**config)
        self.closing = False
        self._max_delay = max_delay_s

    def connection_made(self, f: Any) -> None:
        if self.closing:
            return
        super().connection_made(f)

    def login(self, future: Any) -> bool:
        ok: bool = super().login(future)
        if ok:
            self.reconnect_timeout = 1  # reset the backoff
        return ok

    def connection_lost(self, exc: Exception | None) -> None:
        if self.closing:
            return
        self.reconnect_timeout = min(max(1, self.reconnect_timeout * 2), int(self._max_delay))
        super().connection_lost(exc)

    def connect(self, *args: Any, **kwargs: Any) -> Any:
        if self.closing:
            return None
        return super().connect(*args, **kwargs)


class AmiPresence:
    """Tracks which endpoints' phones are reachable; calls ``on_change(endpoint, ok)``."""

    def __init__(
        self,
        host: str,
        port: int,
        user: str,
        password: str,
        on_change: ReachabilityCallback,
        *,
        max_delay_s: float = 10.0,
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        """``on_lost``: called when the AMI connection is lost (its picture is stale
        until the next login's refresh reports everything again)."""
        self._on_change = on_change
        self._on_lost = on_lost
        self._contacts: dict[str, dict[str, bool]] = {}  # aor -> uri -> ok
        self._reported: dict[str, bool] = {}
        self.logged_in = asyncio.Event()
        self._manager = _Manager(
            host=host,
            port=port,
            username=user,
            secret=password,
            ping_delay=5,
            ping_interval=5,
            reconnect_timeout=1,
            max_delay_s=max_delay_s,
            on_login=self._on_login,
            on_disconnect=self._on_disconnect,
        )
        self._manager.register_event("ContactStatus", self._on_contact_status)
        self._refreshing: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._manager.connect()

    def close(self) -> None:
        self._manager.closing = True
        self._manager.close()
        if self._refreshing is not None:
            self._refreshing.cancel()

    async def reload(self, module: str) -> None:
        """Reload one Asterisk module's configuration (no restart)."""
        await asyncio.wait_for(self.logged_in.wait(), 10)
        reply = await self._manager.send_action({"Action": "Reload", "Module": module})
        if str(reply.get("Response")) != "Success":
            raise AmiError(f"reload {module}: {reply.get('Message')}")

    def drop_connection(self) -> None:
        """Close the TCP connection as a network fault would (fault tests)."""
        if self._manager.protocol is not None:
            self._manager.protocol.transport.close()

    def reachable(self, endpoint: str) -> bool | None:
        return self._reported.get(endpoint)

    # --- panoramisk callbacks ----------------------------------------------------------

    def _on_login(self, manager: Any) -> None:
        log.info("ami.logged_in")
        self._refreshing = asyncio.ensure_future(self.refresh())

    def _on_disconnect(self, manager: Any, exc: Exception | None) -> None:
        self.logged_in.clear()
        if self._on_lost is not None:
            self._reported.clear()  # the next refresh reports every AOR again
            self._on_lost()
        log.warning("ami.disconnected", retry_in_s=manager.reconnect_timeout)

    def _on_contact_status(self, manager: Any, event: Any) -> None:
        aor = str(event.get("AOR") or event.get("EndpointName") or "")
        uri = str(event.get("URI") or "")
        status = str(event.get("ContactStatus") or "")
        if not aor:
            return
        contacts = self._contacts.setdefault(aor, {})
        if status == "Removed":
            contacts.pop(uri, None)
        else:
            contacts[uri] = status not in BAD_STATUSES
        log.info("ami.contact_status", aor=aor, uri=uri, status=status)
        self._report(aor)

    # --- state -----------------------------------------------------------------------

    async def refresh(self) -> None:
        """Read every AOR and registered contact again."""
        contacts: dict[str, dict[str, bool]] = {}
        aors = await self._manager.send_action({"Action": "PJSIPShowAors"})
        for msg in aors if isinstance(aors, list) else [aors]:
            if msg.get("Event") != "AorList":
                continue
            aor = str(msg.get("ObjectName"))
            entry = contacts.setdefault(aor, {})
            for contact in str(msg.get("Contacts") or "").split(","):
                if "/" in contact:  # "aor/uri" (static or registered)
                    entry[contact.split("/", 1)[1]] = True
        found = await self._manager.send_action({"Action": "PJSIPShowContacts"})
        for msg in found if isinstance(found, list) else [found]:
            if msg.get("Event") != "ContactList":
                continue
            aor = str(msg.get("Aor") or msg.get("AOR") or "")
            uri = str(msg.get("Uri") or msg.get("URI") or "")
            contacts.setdefault(aor, {})[uri] = str(msg.get("Status")) not in BAD_STATUSES
        # A static contact (the AOR's own "contact =") is not among the contacts above
        # (those are registrations); when it is qualified, its state shows only in its
        # endpoint's device state: Unavailable while no contact answers.
        found = await self._manager.send_action({"Action": "PJSIPShowEndpoints"})
        for msg in found if isinstance(found, list) else [found]:
            if msg.get("Event") != "EndpointList":
                continue
            if str(msg.get("DeviceState") or "").lower() != "unavailable":
                continue
            for aor in str(msg.get("Aor") or "").split(","):
                for uri in contacts.get(aor.strip(), {}):
                    contacts[aor.strip()][uri] = False
        self._contacts = contacts
        for aor in set(contacts) | set(self._reported):
            self._report(aor)
        self.logged_in.set()
        log.info("ami.refreshed", aors=len(contacts))

    def _report(self, aor: str) -> None:
        ok = any(self._contacts.get(aor, {}).values())
        if self._reported.get(aor) != ok:
            self._reported[aor] = ok
            self._on_change(aor, ok)
