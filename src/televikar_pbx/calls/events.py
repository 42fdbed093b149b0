"""ARI events as the call shell sees them, and the per-call dispatcher.

These belong to the application side (a port): the concrete adapter
(``ari/adapter.py``) produces :class:`AriEvent` values and hands them to a callback, and
``calls/`` depends only on this module, never on the adapter.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

log = structlog.get_logger("televikar_pbx.calls.events")

GLOBAL_KEY = "_global"


def parse_ari_time(value: str | None) -> datetime:
    """Asterisk stamps events as ``2026-11-27T00:13:01.123+0000``; return aware UTC."""
    if not value:
        return datetime.now(UTC)
    # fromisoformat reads Asterisk's "+0000" (Python 3.11) at a twentieth of strptime's
    # cost; every event is stamped, and a call brings about twenty.
    return datetime.fromisoformat(value).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class AriEvent:
    """One websocket message, with the fields the application reads most."""

    type: str
    timestamp: datetime
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AriEvent:
        return cls(str(data["type"]), parse_ari_time(data.get("timestamp")), data)

    @property
    def channel(self) -> dict[str, Any]:
        channel = self.raw.get("channel")
        return channel if isinstance(channel, dict) else {}

    @property
    def channel_id(self) -> str | None:
        cid = self.channel.get("id")
        return str(cid) if cid else None

    @property
    def target_channel_id(self) -> str | None:
        """The channel a playback or recording event is about (``channel:ID`` target)."""
        for name in ("playback", "recording"):
            obj = self.raw.get(name)
            if isinstance(obj, dict):
                target = str(obj.get("target_uri", ""))
                if target.startswith("channel:"):
                    return target.removeprefix("channel:")
        return None

    @property
    def args(self) -> list[str]:
        return [str(a) for a in self.raw.get("args", [])]


EventHandler = Callable[[AriEvent], Awaitable[None]]


class EventDispatcher:
    """Hands events to ``handler`` in order per key, concurrently across keys.

    The key of an event is the call its channel belongs to: channels are bound to a call
    key with :meth:`bind` (the caller leg is its own key; agent legs are bound to the
    caller's). Events without a channel share one global key.
    """

    def __init__(self, handler: EventHandler) -> None:
        self._handler = handler
        self._keys: dict[str, str] = {}
        self._queues: dict[str, asyncio.Queue[AriEvent]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}

    def bind(self, channel_id: str, key: str) -> None:
        self._keys[channel_id] = key

    def unbind(self, channel_id: str) -> None:
        self._keys.pop(channel_id, None)

    def key_of(self, event: AriEvent) -> str:
        cid = event.channel_id or event.target_channel_id
        if cid is None:
            return GLOBAL_KEY
        return self._keys.get(cid, cid)

    def dispatch(self, event: AriEvent) -> None:
        key = self.key_of(event)
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = asyncio.Queue()
        queue.put_nowait(event)
        if key not in self._workers:
            self._workers[key] = asyncio.create_task(self._work(key, queue), name=f"ari:{key}")

    async def _work(self, key: str, queue: asyncio.Queue[AriEvent]) -> None:
        try:
            while not queue.empty():
                event = queue.get_nowait()
                try:
                    await self._handler(event)
                except Exception:
                    log.exception("ari.handler_failed", ari_event=event.type, key=key)
        finally:
            # No await between the emptiness check and here: a new event for this key
            # either landed in the queue before (and was handled) or finds no worker.
            self._workers.pop(key, None)
            self._queues.pop(key, None)

    @property
    def busy(self) -> bool:
        return bool(self._workers)

    async def drain(self) -> None:
        """Wait until every queued event has been handled (shutdown and tests)."""
        while self._workers:
            await asyncio.gather(*list(self._workers.values()), return_exceptions=True)
