"""FastAGI server for the agents' feature codes (``*45`` log in, ``*46`` log out, ``*47``
pause / resume).

Theory of operation. The dialplan (``from-agents`` in asterisk/conf/extensions.conf)
answers an authenticated agent phone and runs
``AGI(agi://127.0.0.1:4573/feature,${EXTEN},${CHANNEL(endpoint)})``. Asterisk connects,
sends a block of ``agi_name: value`` lines ended by an empty line, then waits for
commands. For route ``feature`` we ask the application (``on_feature(endpoint, code)``)
which prompt confirms the code, send ``STREAM FILE televikar/<prompt> ""``, read its
``200 result=...`` reply (it comes when the prompt has been played) and close the
connection; the dialplan then hangs up.

Why not panoramisk's ``fast_agi.Application``: its handler reads until it has seen
``\\n\\n`` with no deadline, so a client that sends half a header block and stalls holds
its task forever, and ``add_route`` wraps plain functions with ``asyncio.coroutine``,
which Python 3.11 no longer has. We keep panoramisk's parsing, ``parse_agi_result`` for
replies and its header rule (``name: value`` lines up to the empty line), and handle the
connection ourselves:

* the header block must be complete within ``header_timeout_s`` (a stalled or half
  client is dropped with a log line; each connection has its own task, so it never
  delays another);
* at most ``MAX_HEADER_LINES`` lines of at most ``MAX_LINE_BYTES`` bytes, only
  ``agi_*`` names; anything else ends the connection;
* every reply is awaited at most ``reply_timeout_s``, the application's decision at
  most ``decision_timeout_s``;
* at most ``max_connections`` at a time; more are closed at once.

Nothing here knows about agents: what a code means, and who may dial it, is the
application's business (the callback answers ``not-allowed`` for a non-agent).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType, TracebackType
from typing import Any, Final, Protocol

import structlog
from panoramisk.utils import parse_agi_result
from structlog.typing import FilteringBoundLogger

log: FilteringBoundLogger = structlog.get_logger(__name__)

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 4573  # IANA's FastAGI port; the dialplan names it too
MAX_LINE_BYTES: Final = 2048  # Asterisk's longest header is agi_request (URL and args)
MAX_HEADER_LINES: Final = 64  # Asterisk 22 sends 21 plus one per argument
MAX_HEADER_BYTES: Final = 16384

# The confirmations the application may ask for (asterisk/prompts.txt, sound:televikar/*).
FEATURE_PROMPTS: Final = frozenset({"logged-in", "logged-out", "paused", "resumed", "not-allowed"})
PROMPT_DIR: Final = "televikar"

_HEADER_NAME = re.compile(r"agi_[a-z0-9_]+")
# What Asterisk can put in the args: dialled digits, and a PJSIP endpoint (section) name.
_FEATURE_CODE = re.compile(r"[*#0-9A-Da-d]{1,16}")
_ENDPOINT = re.compile(r"[A-Za-z0-9_.@+-]{1,80}")


class OnFeature(Protocol):
    """The application's decision: which prompt confirms ``code`` dialled by the phone
    of PJSIP endpoint ``endpoint`` (one of ``FEATURE_PROMPTS``)."""

    def __call__(self, endpoint: str, code: str, /) -> Awaitable[str]: ...


class AgiProtocolError(Exception):
    """The peer broke the AGI protocol (malformed, oversized or cut-off request or reply)."""


@dataclass(frozen=True, slots=True)
class AgiRequest:
    """The header block Asterisk sends when it connects."""

    headers: Mapping[str, str]

    @property
    def script(self) -> str | None:
        """The route: the path of ``agi://host:port/PATH`` (``agi_network_script``)."""
        return self.headers.get("agi_network_script")

    @property
    def args(self) -> list[str]:
        """``agi_arg_1``, ``agi_arg_2``, ... in order, up to the first missing one."""
        args: list[str] = []
        while (value := self.headers.get(f"agi_arg_{len(args) + 1}")) is not None:
            args.append(value)
        return args


@dataclass(frozen=True, slots=True)
class AgiReply:
    """Asterisk's answer to one command: ``200 result=0 endpos=10400``, or ``HANGUP``."""

    line: str
    status: int  # 200, 510, 520, ...; 0 for HANGUP
    result: str  # the value of result=, "" when there is none
    error: str | None  # panoramisk's error name: AGIAppError (result=-1), AGIResultHangup, ...

    @property
    def ok(self) -> bool:
        return self.error is None and self.status == 200


async def read_request(reader: asyncio.StreamReader) -> AgiRequest:
    """Read the header block, line by line, up to the empty line that ends it.

    Lines are ``name: value`` as in panoramisk (the value after ``": "``; Asterisk writes
    ``agi_accountcode: `` with an empty value). The caller bounds the time it takes.
    """
    headers: dict[str, str] = {}
    size = 0
    for _ in range(MAX_HEADER_LINES + 1):
        try:
            raw = await reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            what = "in the header block" if headers or exc.partial else "before any header"
            raise AgiProtocolError(f"connection closed {what}") from None
        except asyncio.LimitOverrunError:
            raise AgiProtocolError(f"header line longer than {MAX_LINE_BYTES} bytes") from None
        size += len(raw)
        if size > MAX_HEADER_BYTES:
            raise AgiProtocolError(f"header block larger than {MAX_HEADER_BYTES} bytes")
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if not line:
            if not headers:
                raise AgiProtocolError("empty header block")
            return AgiRequest(MappingProxyType(headers))
        name, sep, value = line.partition(":")
        if not sep or not _HEADER_NAME.fullmatch(name):
            raise AgiProtocolError(f"not an agi_ header line: {line[:80]!r}")
        headers[name] = value.removeprefix(" ")
    raise AgiProtocolError(f"more than {MAX_HEADER_LINES} header lines")


def parse_reply(line: str) -> AgiReply:
    """One reply line, through panoramisk's ``parse_agi_result``."""
    try:
        parsed: dict[str, Any] = parse_agi_result(line)
    except (TypeError, ValueError):  # no status code: int("") in panoramisk
        raise AgiProtocolError(f"not an AGI reply: {line[:80]!r}") from None
    status = int(line[:3]) if line[:3].isdigit() else 0
    result = parsed.get("result", ("", ""))
    value = result[0] if isinstance(result, tuple) else ""
    return AgiReply(line, status, str(value), parsed.get("error"))


class AgiSession:
    """Commands on one FastAGI connection."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, reply_timeout_s: float
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._reply_timeout_s = reply_timeout_s

    async def command(self, command: str) -> AgiReply:
        """Send one command and wait for its final reply (``100 Trying`` is skipped).

        ``HANGUP`` (the channel hung up, sent inline by Asterisk) is returned as a reply
        of its own; there is no point in waiting for more.
        """
        if "\n" in command or "\r" in command:
            raise ValueError("an AGI command is one line")
        self._writer.write(command.encode() + b"\n")
        async with asyncio.timeout(self._reply_timeout_s):
            await self._writer.drain()
            while True:
                try:
                    raw = await self._reader.readuntil(b"\n")
                except asyncio.IncompleteReadError:
                    raise AgiProtocolError("connection closed before the reply") from None
                except asyncio.LimitOverrunError:
                    raise AgiProtocolError("reply line too long") from None
                reply = parse_reply(raw.decode("utf-8", errors="replace").rstrip("\r\n"))
                if reply.status != 100:
                    return reply


Route = Callable[[AgiRequest, AgiSession, FilteringBoundLogger], Awaitable[None]]


class FeatureServer:
    """The FastAGI server; ``start()``, then ``close()`` (or ``async with``)."""

    def __init__(
        self,
        on_feature: OnFeature,
        *,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        header_timeout_s: float = 5.0,
        reply_timeout_s: float = 30.0,
        decision_timeout_s: float = 5.0,
        max_connections: int = 64,
    ) -> None:
        self._on_feature = on_feature
        self._host = host
        self._port = port
        self._header_timeout_s = header_timeout_s
        self._reply_timeout_s = reply_timeout_s
        self._decision_timeout_s = decision_timeout_s
        self._max_connections = max_connections
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[Any]] = set()
        # agi_network_script -> handler
        self._routes: dict[str, Route] = {"feature": self._feature}

    @property
    def port(self) -> int:
        """The port listened on (the real one when constructed with port 0)."""
        if self._server is None or not self._server.sockets:
            return self._port
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        if self._server is not None:
            return
        self._server = await asyncio.start_server(
            self._handle, self._host, self._port, limit=MAX_LINE_BYTES
        )
        log.info("agi.listening", host=self._host, port=self.port)

    async def close(self) -> None:
        """Stop listening and end the connections still open."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await server.wait_closed()
        log.info("agi.closed")

    async def __aenter__(self) -> FeatureServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        peer = writer.get_extra_info("peername")
        bound = log.bind(peer=f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer))
        try:
            await self._converse(reader, writer, bound)
        except asyncio.CancelledError:
            # close() (or the loop shutting down) ends the connection. The task must
            # not end cancelled: Python 3.11's start_server calls task.exception() on
            # it, which raises for a cancelled task and is logged as an error (3.12
            # fixed that).
            bound.debug("agi.connection_cancelled")
        except Exception:
            bound.exception("agi.failed")
        finally:
            # Not waiting for the close to complete: a stalled peer may not read. What
            # we wrote (one short command) is already out of the transport's buffer.
            writer.close()
            self._connections.discard(task)

    async def _converse(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        bound: FilteringBoundLogger,
    ) -> None:
        if len(self._connections) > self._max_connections:
            bound.warning("agi.too_many_connections", limit=self._max_connections)
            return
        try:
            async with asyncio.timeout(self._header_timeout_s):
                request = await read_request(reader)
        except TimeoutError:
            bound.warning("agi.header_timeout", timeout_s=self._header_timeout_s)
            return
        except AgiProtocolError as exc:
            bound.warning("agi.bad_request", reason=str(exc))
            return
        bound = bound.bind(route=request.script, uniqueid=request.headers.get("agi_uniqueid"))
        route = self._routes.get(request.script or "")
        if route is None:
            bound.warning("agi.unknown_route")
            return
        session = AgiSession(reader, writer, self._reply_timeout_s)
        try:
            await route(request, session, bound)
        except TimeoutError:
            bound.warning("agi.reply_timeout", timeout_s=self._reply_timeout_s)
        except (AgiProtocolError, ConnectionError) as exc:
            bound.warning("agi.connection_lost", reason=str(exc) or type(exc).__name__)

    async def _feature(
        self, request: AgiRequest, session: AgiSession, bound: FilteringBoundLogger
    ) -> None:
        """``feature,CODE,ENDPOINT``: play the confirmation the application chooses."""
        args = request.args
        if len(args) != 2 or not _FEATURE_CODE.fullmatch(args[0]):
            bound.warning("agi.feature.bad_args", args=args[:4])
            return
        code, endpoint = args
        if not _ENDPOINT.fullmatch(endpoint):
            bound.warning("agi.feature.bad_args", args=args)
            return
        bound = bound.bind(endpoint=endpoint, code=code)
        try:
            async with asyncio.timeout(self._decision_timeout_s):
                prompt = await self._on_feature(endpoint, code)
        except TimeoutError:
            bound.error("agi.feature.decision_timeout", timeout_s=self._decision_timeout_s)
            return
        except Exception:
            bound.exception("agi.feature.decision_failed")
            return
        if prompt not in FEATURE_PROMPTS:
            bound.error("agi.feature.unknown_prompt", prompt=prompt)
            return
        bound.info("agi.feature", prompt=prompt)
        reply = await session.command(f'STREAM FILE {PROMPT_DIR}/{prompt} ""')
        if reply.ok:
            bound.debug("agi.feature.played", prompt=prompt, reply=reply.line)
        else:
            # result=-1: the file is missing, or the phone hung up during the prompt.
            bound.warning("agi.feature.not_played", prompt=prompt, reply=reply.line)
