"""Our one adapter over aioari (the asyncio port of ari-py).

Everything that talks to Asterisk's REST interface goes through :class:`AriClient`:

* REST requests use aioari's swagger-generated operations, authenticated with an HTTP
  Basic header (credentials never appear in a URL, so any character is safe in them).
* The event websocket is ours, not aioari's: aioari joins query parameters without
  URL-encoding them and offers no heartbeat. We connect with the credentials in a header,
  the application name URL-encoded, and aiohttp's ping/pong heartbeat, so a dead peer is
  noticed within ``heartbeat`` seconds instead of at the next TCP timeout.
* The websocket is reconnected with exponential backoff (with jitter) for as long as the
  client runs; ``on_connected`` is awaited after every (re)connection so the application
  can resynchronise its view of channels and bridges.
* Events arrive as :class:`~televikar_pbx.calls.events.AriEvent` and are handed to the
  application's callback (in ``serve``, the per-call
  :class:`~televikar_pbx.calls.events.EventDispatcher`).

Errors are translated here into :mod:`televikar_pbx.errors` types.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import structlog
from aiohttp import web_exceptions
from yarl import URL

from televikar_pbx.calls.events import GLOBAL_KEY, AriEvent, EventDispatcher, parse_ari_time
from televikar_pbx.errors import AriError, AriNotFound, AriUnavailable

# The event types live with the application (calls/events.py, a port); re-exported here
# for callers that think of them as the adapter's.
__all__ = ["GLOBAL_KEY", "AriClient", "AriEvent", "EventDispatcher", "parse_ari_time"]

log = structlog.get_logger(__name__)


class AriClient:
    """REST commands and the event stream of one Stasis application."""

    def __init__(
        self,
        url: str,
        user: str,
        password: str,
        app: str,
        *,
        heartbeat_s: float = 10.0,
        reconnect_max_s: float = 10.0,
    ) -> None:
        self._base = URL(url if url.endswith("/") else url + "/")
        self._user = user
        self._password = password
        self._auth_header = {"Authorization": aiohttp.encode_basic_auth(user, password)}
        self.app = app
        self._heartbeat = heartbeat_s
        self._reconnect_max = reconnect_max_s
        self._session: aiohttp.ClientSession | None = None
        self._rest: Any = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._stopping = asyncio.Event()
        self._rest_lock = asyncio.Lock()
        self.connected = asyncio.Event()

    @property
    def events_url(self) -> URL:
        scheme = "wss" if self._base.scheme == "https" else "ws"
        return self._base.with_scheme(scheme).joinpath("ari/events")

    # --- lifecycle ---------------------------------------------------------------------

    async def _ensure_rest(self) -> Any:
        if self._rest is not None:
            return self._rest
        # At start the event loop and the first REST calls (hints, presence) get here
        # together: one client, not one each (the others' HTTP sessions leaked).
        async with self._rest_lock:
            if self._rest is not None:
                return self._rest
            return await self._make_rest()

    async def _make_rest(self) -> Any:
        import aioari  # the import builds nothing; keep it local to this adapter
        from aioswagger11.http_client import AsynchronousHttpClient, BasicAuthenticator

        http = AsynchronousHttpClient(
            auth=BasicAuthenticator(self._base.host, self._user, self._password)
        )
        client = aioari.Client(str(self._base), http)
        try:
            await client.init()
        except Exception as exc:
            await http.close()
            raise self._translate(exc, "loading ARI API description") from exc
        self._rest = client
        self._session = http.session
        return client

    async def run(
        self,
        on_event: Callable[[AriEvent], None],
        on_connected: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Receive events until :meth:`close`; reconnect with backoff on any loss."""
        delay = 0.5
        while not self._stopping.is_set():
            try:
                await self._ensure_rest()
                assert self._session is not None
                async with self._session.ws_connect(
                    self.events_url,
                    params={"app": self.app, "subscribeAll": "false"},
                    headers=self._auth_header,
                    heartbeat=self._heartbeat,
                ) as ws:
                    self._ws = ws
                    self.connected.set()
                    delay = 0.5
                    log.info("ari.connected", url=str(self._base), app=self.app)
                    if on_connected is not None:
                        await on_connected()
                    async for msg in ws:
                        if msg.type is aiohttp.WSMsgType.TEXT:
                            self._deliver(msg.data, on_event)
                        elif msg.type is aiohttp.WSMsgType.ERROR:
                            break
                log.warning("ari.disconnected", code=ws.close_code)
            except (AriError, aiohttp.ClientError, OSError, TimeoutError) as exc:
                log.warning("ari.connect_failed", error=str(exc) or type(exc).__name__)
            finally:
                self._ws = None
                self.connected.clear()
            if self._stopping.is_set():
                break
            sleep = delay * (0.8 + 0.4 * random.random())
            log.info("ari.reconnecting", in_s=round(sleep, 2))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), sleep)
            delay = min(delay * 2, self._reconnect_max)

    @staticmethod
    def _deliver(text: str, on_event: Callable[[AriEvent], None]) -> None:
        try:
            data = json.loads(text)
            event = AriEvent.from_json(data)
        except (ValueError, KeyError, TypeError):
            log.error("ari.bad_event", text=text[:200])
            return
        on_event(event)

    async def drop_connection(self) -> None:
        """Close the websocket as if the network dropped it (fault tests)."""
        if self._ws is not None:
            await self._ws.close()

    async def close(self) -> None:
        self._stopping.set()
        if self._ws is not None:
            await self._ws.close()
        if self._rest is not None:
            await self._rest.close()  # aioari closes its websockets, not the HTTP session
            self._rest = None
        if self._session is not None:
            await self._session.close()  # else asyncio logs "Unclosed client session"
            self._session = None

    # --- REST --------------------------------------------------------------------------

    @staticmethod
    def _translate(exc: BaseException, doing: str) -> AriError:
        if isinstance(exc, web_exceptions.HTTPNotFound):
            return AriNotFound(f"{doing}: not found", 404)
        if isinstance(exc, web_exceptions.HTTPException):
            return AriError(f"{doing}: HTTP {exc.status_code} {exc.text or ''}", exc.status_code)
        if isinstance(exc, aiohttp.ClientError | OSError | TimeoutError):
            return AriUnavailable(f"{doing}: {exc or type(exc).__name__}")
        return AriError(f"{doing}: {exc!r}")

    async def _call(self, resource: str, operation: str, **kwargs: Any) -> Any:
        rest = await self._ensure_rest()
        try:
            return await getattr(getattr(rest, resource), operation)(**kwargs)
        except (web_exceptions.HTTPException, aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise self._translate(exc, f"{resource}.{operation}") from exc

    @staticmethod
    def _json(obj: Any) -> dict[str, Any]:
        data = getattr(obj, "json", obj)
        return data if isinstance(data, dict) else {}

    async def ring(self, channel_id: str) -> None:
        await self._call("channels", "ring", channelId=channel_id)

    async def answer(self, channel_id: str) -> None:
        await self._call("channels", "answer", channelId=channel_id)

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        await self._call("channels", "hangup", channelId=channel_id, reason=reason)

    async def set_variable(self, channel_id: str, name: str, value: str) -> None:
        await self._call(
            "channels", "setChannelVar", channelId=channel_id, variable=name, value=value
        )

    async def originate(
        self,
        endpoint: str,
        *,
        channel_id: str,
        app_args: str,
        caller_id: str,
        timeout_s: int,
        originator: str | None = None,
        variables: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "endpoint": endpoint,
            "channelId": channel_id,
            "app": self.app,
            "appArgs": app_args,
            "callerId": caller_id,
            "timeout": timeout_s,
        }
        if originator:
            kwargs["originator"] = originator
        if variables:
            kwargs["variables"] = variables
        return self._json(await self._call("channels", "originate", **kwargs))

    async def play(self, channel_id: str, media: list[str], playback_id: str) -> None:
        await self._call(
            "channels", "play", channelId=channel_id, media=media, playbackId=playback_id
        )

    async def record(
        self, channel_id: str, name: str, *, max_s: int, terminate_on: str = "#"
    ) -> None:
        await self._call(
            "channels",
            "record",
            channelId=channel_id,
            name=name,
            format="wav",
            maxDurationSeconds=max_s,
            terminateOn=terminate_on,
            beep="true",  # yarl refuses bool query values
            ifExists="overwrite",
        )

    async def start_moh(self, channel_id: str, moh_class: str | None = None) -> None:
        kwargs = {"mohClass": moh_class} if moh_class else {}
        await self._call("channels", "startMoh", channelId=channel_id, **kwargs)

    async def stop_moh(self, channel_id: str) -> None:
        await self._call("channels", "stopMoh", channelId=channel_id)

    async def create_bridge(self, bridge_id: str, name: str = "") -> dict[str, Any]:
        return self._json(
            await self._call("bridges", "create", type="mixing", bridgeId=bridge_id, name=name)
        )

    async def add_to_bridge(self, bridge_id: str, channel_ids: list[str]) -> None:
        await self._call("bridges", "addChannel", bridgeId=bridge_id, channel=channel_ids)

    async def destroy_bridge(self, bridge_id: str) -> None:
        await self._call("bridges", "destroy", bridgeId=bridge_id)

    async def subscribe_channel(self, channel_id: str) -> None:
        """Keep receiving this channel's events after it leaves Stasis (its
        ChannelDestroyed carries the hang-up cause)."""
        await self._call(
            "applications",
            "subscribe",
            applicationName=self.app,
            eventSource=f"channel:{channel_id}",
        )

    async def get_variable(self, channel_id: str, name: str) -> str | None:
        result = await self._call("channels", "getChannelVar", channelId=channel_id, variable=name)
        value = self._json(result).get("value")
        return str(value) if value is not None else None

    async def set_device_state(self, device: str, state: str) -> None:
        """Publish ``Stasis:<device>`` (``devicestate list`` in the CLI, phone BLF)."""
        await self._call("deviceStates", "update", deviceName=f"Stasis:{device}", deviceState=state)

    async def reload_module(self, module: str) -> None:
        await self._call("asterisk", "reloadModule", moduleName=module)

    async def set_global(self, name: str, value: str) -> None:
        await self._call("asterisk", "setGlobalVar", variable=name, value=value)

    async def list_channels(self) -> list[dict[str, Any]]:
        result = await self._call("channels", "list")
        return [self._json(c) for c in result or []]

    async def list_bridges(self) -> list[dict[str, Any]]:
        result = await self._call("bridges", "list")
        return [self._json(b) for b in result or []]

    async def playback_exists(self, playback_id: str) -> bool:
        """Whether the playback is still going on."""
        try:
            await self._call("playbacks", "get", playbackId=playback_id)
        except AriNotFound:
            return False
        return True

    async def live_recording_exists(self, name: str) -> bool:
        """Whether the recording is still being made."""
        try:
            await self._call("recordings", "getLive", recordingName=name)
        except AriNotFound:
            return False
        return True
