"""Our one adapter over aioari (the asyncio port of ari-py).

Everything that talks to Asterisk's REST interface goes through :class:`AriClient`:

* REST requests a call makes (ring, answer, originate, bridges, media, hang-up: the
  hot path) are plain aiohttp requests on the client's session; the rest (lists,
  device states, reloads) use aioari's swagger-generated operations. Both send an HTTP
  Basic header (credentials never appear in a URL, so any character is safe in them).
  The swagger client validates and wraps every request and response in Python; for
  the dozen requests of each call that cost more of our CPU than the routing itself
  (docs/performance.md, issue 15).
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
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import quote

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

# A hot-path request Asterisk has not answered in this time is taken as Asterisk being
# unreachable (AriUnavailable); it answers in milliseconds when it is up.
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=10)
# Connections of ours to Asterisk's HTTP server for the hot path and the event
# websocket. Asterisk serves at most ``sessionlimit`` at once (http.conf, default 100),
# everyone's together; when Asterisk is overloaded and answers slowly, an unbounded pool
# (aiohttp's default is 100) opens connections until Asterisk refuses new ones: then
# operators' tools, and our own websocket's reconnection, are refused too. More requests
# than this wait in our queue instead.
ARI_CONNECTIONS = 24


def _q(part: str) -> str:
    """One path segment, percent-encoded (channel ids, bridge ids and names are ours or
    Asterisk's, but never trusted to be URL-safe)."""
    return quote(part, safe="")


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
        self._api = self._base.joinpath("ari")
        self._user = user
        self._password = password
        self._auth_header = {"Authorization": aiohttp.encode_basic_auth(user, password)}
        self.app = app
        self._heartbeat = heartbeat_s
        self._reconnect_max = reconnect_max_s
        self._session: aiohttp.ClientSession | None = None  # aioswagger's (cold requests)
        self._http: aiohttp.ClientSession | None = None  # ours: hot path and websocket
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
        self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=ARI_CONNECTIONS))
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
                assert self._http is not None
                async with self._http.ws_connect(
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
        for session in (self._session, self._http):
            if session is not None:
                await session.close()  # else asyncio logs "Unclosed client session"
        self._session = self._http = None

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

    async def _request(
        self,
        method: str,
        path: str,
        params: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ) -> Any:
        """One hot-path request: ``path`` under ``ari/`` (its parts already quoted),
        the JSON answer (None for 204). Errors as :meth:`_call`'s."""
        await self._ensure_rest()
        assert self._http is not None
        doing = f"{method} {path}"
        try:
            async with self._http.request(
                method,
                self._api.joinpath(path, encoded=True),
                params=params,
                json=body,
                headers=self._auth_header,
                timeout=REQUEST_TIMEOUT,
            ) as response:
                if response.status == 404:
                    raise AriNotFound(f"{doing}: not found", 404)
                if response.status >= 400:
                    text = (await response.text()).strip()
                    raise AriError(f"{doing}: HTTP {response.status} {text}", response.status)
                if response.status == 204:
                    return None
                return await response.json(content_type=None)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise AriUnavailable(f"{doing}: {exc or type(exc).__name__}") from exc

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
        await self._request("POST", f"channels/{_q(channel_id)}/ring")

    async def answer(self, channel_id: str) -> None:
        await self._request("POST", f"channels/{_q(channel_id)}/answer")

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        await self._request("DELETE", f"channels/{_q(channel_id)}", {"reason": reason})

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
        params = {
            "endpoint": endpoint,
            "app": self.app,
            "appArgs": app_args,
            "callerId": caller_id,
            "timeout": str(timeout_s),
        }
        if originator:
            params["originator"] = originator
        body = {"variables": variables} if variables else None
        result = await self._request("POST", f"channels/{_q(channel_id)}", params, body)
        return self._json(result)

    async def play(self, channel_id: str, media: list[str], playback_id: str) -> None:
        path = f"channels/{_q(channel_id)}/play/{_q(playback_id)}"
        await self._request("POST", path, {"media": ",".join(media)})

    async def record(
        self, channel_id: str, name: str, *, max_s: int, terminate_on: str = "#"
    ) -> None:
        params = {
            "name": name,
            "format": "wav",
            "maxDurationSeconds": str(max_s),
            "terminateOn": terminate_on,
            "beep": "true",
            "ifExists": "overwrite",
        }
        await self._request("POST", f"channels/{_q(channel_id)}/record", params)

    async def start_moh(self, channel_id: str, moh_class: str | None = None) -> None:
        params = {"mohClass": moh_class} if moh_class else None
        await self._request("POST", f"channels/{_q(channel_id)}/moh", params)

    async def stop_moh(self, channel_id: str) -> None:
        await self._request("DELETE", f"channels/{_q(channel_id)}/moh")

    async def create_bridge(self, bridge_id: str, name: str = "") -> dict[str, Any]:
        params = {"type": "mixing", "name": name}
        return self._json(await self._request("POST", f"bridges/{_q(bridge_id)}", params))

    async def add_to_bridge(self, bridge_id: str, channel_ids: list[str]) -> None:
        path = f"bridges/{_q(bridge_id)}/addChannel"
        await self._request("POST", path, {"channel": ",".join(channel_ids)})

    async def destroy_bridge(self, bridge_id: str) -> None:
        await self._request("DELETE", f"bridges/{_q(bridge_id)}")

    async def subscribe_channel(self, channel_id: str) -> None:
        """Keep receiving this channel's events after it leaves Stasis (its
        ChannelDestroyed carries the hang-up cause)."""
        path = f"applications/{_q(self.app)}/subscription"
        await self._request("POST", path, {"eventSource": f"channel:{channel_id}"})

    async def filter_events(self, types: Iterable[str]) -> None:
        """Have Asterisk send this application only events of ``types`` (ARI's
        eventFilter): the others (variable sets, state changes, dialplan steps, bridge
        entries: most of a call's events) cost Asterisk their JSON and us their parsing,
        and nobody reads them."""
        body = {"allowed": [{"type": t} for t in sorted(types)], "disallowed": []}
        await self._request("PUT", f"applications/{_q(self.app)}/eventFilter", body=body)

    async def get_variable(self, channel_id: str, name: str) -> str | None:
        result = await self._request(
            "GET", f"channels/{_q(channel_id)}/variable", {"variable": name}
        )
        value = self._json(result).get("value")
        return str(value) if value is not None else None

    async def set_device_state(self, device: str, state: str) -> None:
        """Publish ``Stasis:<device>`` (``devicestate list`` in the CLI, phone BLF)."""
        await self._call("deviceStates", "update", deviceName=f"Stasis:{device}", deviceState=state)

    async def reload_module(self, module: str) -> None:
        await self._call("asterisk", "reloadModule", moduleName=module)

    async def set_global(self, name: str, value: str) -> None:
        await self._call("asterisk", "setGlobalVar", variable=name, value=value)

    async def system_name(self) -> str:
        """Asterisk's asterisk.conf ``systemname`` ("" when it has none)."""
        result = self._json(await self._request("GET", "asterisk/info", {"only": "config"}))
        config = result.get("config")
        return str(config.get("name") or "") if isinstance(config, dict) else ""

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
