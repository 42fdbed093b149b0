"""What the parts of the call service share: the calls in progress and the ports.

:class:`CallService` (``services.py``) is built from :class:`StasisEvents`
(``stasis.py``: ARI events → desk events) and :class:`DeskCommands` (``commands.py``:
desk commands → telephony, journal through ``journal.py``); this base names the state
and the ports both use, and the one way into the desk, :meth:`_feed`.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from datetime import datetime
from typing import Any

import structlog

from televikar_pbx.calls.agent_log import AgentLog
from televikar_pbx.calls.events import AriEvent
from televikar_pbx.calls.journal import CallJournal
from televikar_pbx.calls.media import MediaFlows
from televikar_pbx.calls.ports import CallStore, Telephony
from televikar_pbx.calls.presence import Presence
from televikar_pbx.calls.state import ActiveCall
from televikar_pbx.clock import Clock
from televikar_pbx.domain import acd
from televikar_pbx.domain.directory import Agent, Directory
from televikar_pbx.errors import AriError, AriNotFound

log = structlog.get_logger("televikar_pbx.calls")

# Synthetic events we put into a call's own queue, so they are ordered with the rest.
OFFER_FAILED_LATER = "TelevikarOfferFailed"
COMMAND = "TelevikarCommand"
TICK = "TelevikarTick"
RING_AGAIN = "TelevikarRingAgain"

# The call whose worker runs the current handler (see CallService.handle).
current_key: contextvars.ContextVar[str | None] = contextvars.ContextVar("call_key", default=None)


def synthetic(kind: str, at: datetime, key: str, **fields: Any) -> AriEvent:
    return AriEvent(kind, at, {"type": kind, "channel": {"id": key}, **fields})


class CallShell:
    """State and ports; set by :class:`CallService`'s constructor."""

    clock: Clock
    directory: Directory
    desk: acd.Desk
    calls: dict[str, ActiveCall]
    _ari: Telephony
    _store: CallStore
    _journal: CallJournal
    _bind: Callable[[str, str], None]
    _unbind: Callable[[str], None]
    _dispatch: Callable[[AriEvent], None]
    _media: MediaFlows
    _presence: Presence | None
    _agent_log: AgentLog | None  # the agents' availability log
    _channel_call: dict[str, str]  # channel id -> call key
    _agents: dict[int, Agent]
    # Channels whose ChannelDestroyed we will get (see StasisEvents.stasis_handlers).
    _subscribed: set[str]
    _tick_at: datetime | None
    _tick_handle: asyncio.TimerHandle | None
    _rows: set[asyncio.Future[int]]  # calls' rows being written (CallService)
    # A waiting caller's 180 Ringing, sent again this often (DeskCommands); None: once.
    _ring_again_s: float | None

    def _row_written(self, key: str, row: asyncio.Future[int]) -> None:
        raise NotImplementedError

    async def _feed(self, event: acd.Event, at: datetime) -> None:
        """Hand an event to the desk and carry out its commands."""
        raise NotImplementedError

    async def execute(self, commands: list[acd.Command], at: datetime) -> None:
        """Carry out the desk's commands (DeskCommands)."""
        raise NotImplementedError

    async def _on_command(self, event: AriEvent) -> None:
        """A command queued to this call's worker (DeskCommands)."""
        raise NotImplementedError

    async def _keep_ringing(self, call: ActiveCall) -> None:
        """180 Ringing to a waiting caller, again and again (DeskCommands)."""
        raise NotImplementedError

    async def _on_ring_again(self, event: AriEvent) -> None:
        """The next 180 Ringing to a waiting caller is due (DeskCommands)."""
        raise NotImplementedError


async def quietly(request: Any) -> None:
    """Run a request whose target may be gone already (hang-up races)."""
    try:
        await request
    except AriNotFound:
        pass
    except AriError as exc:
        log.warning("ari.request_failed", error=str(exc))
