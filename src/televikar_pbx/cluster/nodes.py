"""One desk over several Asterisk nodes: the :class:`Telephony` port over one ARI
client per node.

Which node a request goes to is read from the id it names. Every node has its own
asterisk.conf ``systemname``, and Asterisk then starts every unique id with it
(``a-1700000000.12``); a call's key is its caller leg's unique id, and everything we
create for a call is named from its key (calls/naming.py: ``<key>-a<n>``,
``<key>-bridge``, ``hold-<key>``, ``ann-<key>``, ``prompt-<key>``,
``msg-<record id>-<key>``). So :func:`node_of` finds the node in any of these ids
without a table, also after a restart. An agent's leg for a caller on node X is
originated on node X (its phone is reached through the SIP front, Kamailio), so the
caller, the agent leg and their bridge are always on one node.

Lists (channels, bridges) are the nodes' lists together; a node that does not answer
is left out of them (it is down: its calls are recovered when it is back). What is
published to every node (device states, globals for the dialplan and phones' lamps)
goes to the nodes connected now; a node that connects is sent everything again
(Presence.resync in its on_connected).

With one node (no ``TELEVIKAR_NODES``) that node owns every id, whatever its name, and
every request goes straight to its client: the service behaves as before.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog

from televikar_pbx.calls import naming
from televikar_pbx.calls.events import AriEvent
from televikar_pbx.calls.ports import Telephony
from televikar_pbx.errors import AriError, AriNotFound, AriUnavailable
from televikar_pbx.settings import NodeSettings

log = structlog.get_logger("televikar_pbx.cluster")

# Asterisk's unique id after the systemname and its dash: epoch seconds, a dot, a
# counter.
_UNIQUEID = re.compile(r"\d+\.\d+")
# What we put before a call key in the names of playbacks and recordings.
_NAME_PREFIX = re.compile(
    "|".join(
        re.escape(p)
        for p in (
            naming.hold_playback(""),
            naming.announcement_playback(""),
            naming.prompt_playback(""),
        )
    )
    + r"|msg-\d+-"
)


def node_of(identifier: str, names: Iterable[str]) -> str | None:
    """The node (one of ``names``) whose channel ``identifier`` is, or that we named
    after such a channel; None when it names none of them (a single-node id without a
    systemname, someone else's name)."""
    ordered = sorted(names, key=len, reverse=True)  # "ab-1.2" is ab's, not a's
    rest = [identifier]
    prefix = _NAME_PREFIX.match(identifier)
    if prefix is not None:
        # The id itself first: a node may be called "hold" ("hold-1700000000.1").
        rest.append(identifier[prefix.end() :])
    for text in rest:
        for name in ordered:
            if (
                name
                and text.startswith(name)
                and text[len(name) : len(name) + 1] == "-"
                and _UNIQUEID.match(text, len(name) + 1)
            ):
                return name
    return None


class NodeClient(Telephony, Protocol):
    """What the service needs of one node's ARI client (ari/adapter.py AriClient)."""

    connected: asyncio.Event

    async def filter_events(self, types: Iterable[str]) -> None: ...

    async def set_device_state(self, device: str, state: str) -> None: ...

    async def set_global(self, name: str, value: str) -> None: ...

    async def reload_module(self, module: str) -> None: ...

    async def system_name(self) -> str: ...

    async def run(
        self,
        on_event: Callable[[AriEvent], None],
        on_connected: Callable[[], Awaitable[None]] | None = None,
    ) -> None: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class Node:
    settings: NodeSettings
    ari: NodeClient

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def up(self) -> bool:
        return self.ari.connected.is_set()


class Nodes:
    """The Telephony port (and the presence publisher) over every node."""

    def __init__(self, nodes: Sequence[Node]) -> None:
        if not nodes:
            raise ValueError("at least one node")
        self.nodes = list(nodes)
        self._by_name = {n.name: n for n in self.nodes}
        self._single = self.nodes[0] if len(self.nodes) == 1 else None

    def owner(self, identifier: str) -> Node | None:
        """The node ``identifier`` (a channel, bridge, playback or recording) is on."""
        if self._single is not None:
            return self._single
        name = node_of(identifier, self._by_name)
        return self._by_name.get(name) if name is not None else None

    async def check_name(self, node: Node) -> bool:
        """Whether the node's Asterisk has the node's name as its systemname (several
        nodes only): a node without it names its channels so that no request for its
        calls finds it (every one would fail), so it is one loud error at connect."""
        if self._single is not None:
            return True
        try:
            name = await node.ari.system_name()
        except AriError as exc:
            log.warning("cluster.node_name_unknown", node=node.name, error=str(exc))
            return True
        if name != node.name:
            log.error(
                "cluster.node_misnamed", node=node.name, systemname=name,
                fix="set asterisk.conf [options] systemname to the node's name",
            )  # fmt: skip
            return False
        return True

    def owns(self, node: Node) -> Callable[[str], bool]:
        """Whether an id is ``node``'s (recovery of that node's calls only)."""
        return lambda identifier: self.owner(identifier) is node

    def _ari(self, identifier: str) -> NodeClient:
        node = self.owner(identifier)
        if node is None:
            raise AriNotFound(f"{identifier}: on no node of ours", 404)
        return node.ari

    def status(self, keys: Iterable[str]) -> list[dict[str, Any]]:
        """Each node, up or down, with the number of ``keys`` (calls) on it."""
        counts = dict.fromkeys(self._by_name, 0)
        for key in keys:
            node = self.owner(key)
            if node is not None:
                counts[node.name] += 1
        return [{"name": n.name, "up": n.up, "calls": counts[n.name]} for n in self.nodes]

    # --- one node, by the id ------------------------------------------------------------

    async def ring(self, channel_id: str) -> None:
        await self._ari(channel_id).ring(channel_id)

    async def answer(self, channel_id: str) -> None:
        await self._ari(channel_id).answer(channel_id)

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        await self._ari(channel_id).hangup(channel_id, reason)

    async def subscribe_channel(self, channel_id: str) -> None:
        await self._ari(channel_id).subscribe_channel(channel_id)

    async def get_variable(self, channel_id: str, name: str) -> str | None:
        return await self._ari(channel_id).get_variable(channel_id, name)

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
        # The agent leg's id is named from the caller's key: the caller's node.
        return await self._ari(channel_id).originate(
            endpoint,
            channel_id=channel_id,
            app_args=app_args,
            caller_id=caller_id,
            timeout_s=timeout_s,
            originator=originator,
            variables=variables,
        )

    async def play(self, channel_id: str, media: list[str], playback_id: str) -> None:
        await self._ari(channel_id).play(channel_id, media, playback_id)

    async def record(
        self, channel_id: str, name: str, *, max_s: int, terminate_on: str = "#"
    ) -> None:
        await self._ari(channel_id).record(channel_id, name, max_s=max_s, terminate_on=terminate_on)

    async def start_moh(self, channel_id: str, moh_class: str | None = None) -> None:
        await self._ari(channel_id).start_moh(channel_id, moh_class)

    async def stop_moh(self, channel_id: str) -> None:
        await self._ari(channel_id).stop_moh(channel_id)

    async def create_bridge(self, bridge_id: str, name: str = "") -> dict[str, Any]:
        return await self._ari(bridge_id).create_bridge(bridge_id, name)

    async def add_to_bridge(self, bridge_id: str, channel_ids: list[str]) -> None:
        await self._ari(bridge_id).add_to_bridge(bridge_id, channel_ids)

    async def destroy_bridge(self, bridge_id: str) -> None:
        await self._ari(bridge_id).destroy_bridge(bridge_id)

    async def playback_exists(self, playback_id: str) -> bool:
        return await self._ari(playback_id).playback_exists(playback_id)

    async def live_recording_exists(self, name: str) -> bool:
        return await self._ari(name).live_recording_exists(name)

    # --- every node ---------------------------------------------------------------------

    async def list_channels(self) -> list[dict[str, Any]]:
        return await self._merged(lambda ari: ari.list_channels(), "channels")

    async def list_bridges(self) -> list[dict[str, Any]]:
        return await self._merged(lambda ari: ari.list_bridges(), "bridges")

    async def _merged(
        self, request: Callable[[NodeClient], Awaitable[list[dict[str, Any]]]], what: str
    ) -> list[dict[str, Any]]:
        if self._single is not None:
            return await request(self._single.ari)
        results = await asyncio.gather(
            *(request(n.ari) for n in self.nodes), return_exceptions=True
        )
        merged: list[dict[str, Any]] = []
        for node, result in zip(self.nodes, results, strict=True):
            if isinstance(result, AriError):
                log.warning("cluster.list_failed", node=node.name, what=what, error=str(result))
            elif isinstance(result, BaseException):
                raise result
            else:
                merged += result
        return merged

    async def set_device_state(self, device: str, state: str) -> None:
        await self._everywhere(lambda ari: ari.set_device_state(device, state))

    async def set_global(self, name: str, value: str) -> None:
        await self._everywhere(lambda ari: ari.set_global(name, value))

    async def _everywhere(self, request: Callable[[NodeClient], Awaitable[None]]) -> None:
        """To every connected node; AriUnavailable when it reached none (so the value
        is published again at the next change)."""
        if self._single is not None:
            await request(self._single.ari)
            return
        up = [n for n in self.nodes if n.up]
        results = await asyncio.gather(*(request(n.ari) for n in up), return_exceptions=True)
        failed = 0
        for node, result in zip(up, results, strict=True):
            if isinstance(result, AriError):
                failed += 1
                log.debug("cluster.publish_failed", node=node.name, error=str(result))
            elif isinstance(result, BaseException):
                raise result
        if failed == len(up):
            raise AriUnavailable("no node connected")


class NodeWatch:
    """Tells when a node has been unreachable for ``lost_after_s``: its websocket closed
    and not connected again since (``on_lost(node, since)``, once per loss). The calls
    that were on it are then over for the desk (a node killed takes its channels with
    it); ``since`` is when the desk last heard from it."""

    def __init__(
        self,
        nodes: Nodes,
        lost_after_s: float,
        on_lost: Callable[[Node, datetime], None],
        now: Callable[[], datetime],
        interval_s: float = 0.1,
    ) -> None:
        self._nodes = nodes
        self._lost_after = timedelta(seconds=lost_after_s)
        self._on_lost = on_lost
        self._now = now
        self._interval = interval_s
        self._down_since: dict[str, datetime] = {}
        self._reported: set[str] = set()

    def check(self) -> None:
        now = self._now()
        for node in self._nodes.nodes:
            if node.up:
                self._down_since.pop(node.name, None)
                self._reported.discard(node.name)
                continue
            since = self._down_since.setdefault(node.name, now)
            if node.name not in self._reported and now - since >= self._lost_after:
                self._reported.add(node.name)
                log.warning("cluster.node_lost", node=node.name, since=since.isoformat())
                self._on_lost(node, since)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            self.check()
