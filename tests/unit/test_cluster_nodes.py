"""cluster/nodes.py and cluster/phones.py: which node an id is on, requests sent to
that node, lists merged, presence published to the nodes that are up, a phone
reachable from any node; a node lost; and TELEVIKAR_NODES read from the environment. With fake
ARI clients (the real cluster: tests/asterisk/test_cluster_desk.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from televikar_pbx.calls import naming
from televikar_pbx.cluster.nodes import Node, Nodes, NodeWatch, node_of
from televikar_pbx.cluster.phones import PhoneReachability
from televikar_pbx.errors import AriNotFound, AriUnavailable
from televikar_pbx.settings import NodeSettings, Settings

NAMES = ("a", "b", "ab")
T0 = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("identifier", "node"),
    [
        ("a-1796552974.0", "a"),
        ("b-1796552974.12", "b"),
        ("ab-1796552974.3", "ab"),  # not a's
        (naming.agent_leg("b-1796552974.12", 3), "b"),
        (naming.bridge("a-1796552974.0"), "a"),
        (naming.hold_playback("b-1796552974.12"), "b"),
        (naming.announcement_playback("ab-1796552974.3"), "ab"),
        (naming.prompt_playback("a-1796552974.0"), "a"),
        (naming.recording(42, "b-1796552974.12"), "b"),
        # Not ours, or not a node's: no owner.
        ("1796552974.0", None),  # a single node without systemname
        ("c-1796552974.0", None),  # no node c
        ("a-bridge", None),
        ("a-", None),
        ("ab", None),
        ("hold-1796552974.0", None),
        ("msg-x-a-1796552974.0", None),
        ("", None),
    ],
)
def test_node_of_reads_the_systemname_in_our_ids(identifier: str, node: str | None) -> None:
    assert node_of(identifier, NAMES) == node


def test_a_node_named_like_a_prefix_owns_its_own_ids() -> None:
    assert node_of("hold-1796552974.0", ("hold", "a")) == "hold"
    assert node_of("hold-a-1796552974.0", ("hold", "a")) == "a"
    assert node_of("msg-7-hold-1796552974.0", ("hold", "a")) == "hold"


@dataclass
class FakeNodeAri:
    """One node's ARI client: records requests, answers lists, can be down."""

    name: str
    channels: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, Any]] = field(default_factory=list)
    down: bool = False
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    systemname: str = ""

    def __post_init__(self) -> None:
        self.systemname = self.systemname or self.name
        if not self.down:
            self.connected.set()

    def _note(self, what: str, arg: Any) -> None:
        if self.down:
            raise AriUnavailable(f"{self.name} is down")
        self.requests.append((what, arg))

    async def ring(self, channel_id: str) -> None:
        self._note("ring", channel_id)

    async def answer(self, channel_id: str) -> None:
        self._note("answer", channel_id)

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        self._note("hangup", channel_id)

    async def subscribe_channel(self, channel_id: str) -> None:
        self._note("subscribe", channel_id)

    async def get_variable(self, channel_id: str, name: str) -> str | None:
        self._note("get_variable", channel_id)
        return self.name

    async def originate(self, endpoint: str, *, channel_id: str, **kw: Any) -> dict[str, Any]:
        self._note("originate", (endpoint, channel_id, kw["originator"]))
        return {"id": channel_id}

    async def play(self, channel_id: str, media: list[str], playback_id: str) -> None:
        self._note("play", playback_id)

    async def record(self, channel_id: str, name: str, *, max_s: int, terminate_on: str) -> None:
        self._note("record", name)

    async def start_moh(self, channel_id: str, moh_class: str | None = None) -> None:
        self._note("moh", channel_id)

    async def stop_moh(self, channel_id: str) -> None:
        self._note("unmoh", channel_id)

    async def create_bridge(self, bridge_id: str, name: str = "") -> dict[str, Any]:
        self._note("bridge", bridge_id)
        return {"id": bridge_id}

    async def add_to_bridge(self, bridge_id: str, channel_ids: list[str]) -> None:
        self._note("add", (bridge_id, tuple(channel_ids)))

    async def destroy_bridge(self, bridge_id: str) -> None:
        self._note("unbridge", bridge_id)

    async def list_channels(self) -> list[dict[str, Any]]:
        self._note("channels", None)
        return self.channels

    async def list_bridges(self) -> list[dict[str, Any]]:
        self._note("bridges", None)
        return []

    async def playback_exists(self, playback_id: str) -> bool:
        self._note("playback?", playback_id)
        return True

    async def live_recording_exists(self, name: str) -> bool:
        self._note("recording?", name)
        return True

    async def set_device_state(self, device: str, state: str) -> None:
        self._note("device", (device, state))

    async def set_global(self, name: str, value: str) -> None:
        self._note("global", (name, value))

    async def filter_events(self, types: Iterable[str]) -> None:
        self._note("filter", None)

    async def reload_module(self, module: str) -> None:
        self._note("reload", module)

    async def system_name(self) -> str:
        self._note("info", None)
        return self.systemname

    async def run(self, on_event: Any, on_connected: Any = None) -> None:
        return None

    async def close(self) -> None:
        return None


def cluster(*names: str, down: tuple[str, ...] = ()) -> tuple[Nodes, dict[str, FakeNodeAri]]:
    fakes = {n: FakeNodeAri(n, down=n in down) for n in names}
    nodes = Nodes(
        [Node(NodeSettings(name=n, ari_url=f"http://{n}:8088/"), fakes[n]) for n in names]
    )
    return nodes, fakes


async def test_a_call_is_carried_out_on_the_node_of_its_caller() -> None:
    nodes, fakes = cluster("a", "b")
    key = "b-1796552974.12"
    leg = naming.agent_leg(key, 1)
    await nodes.ring(key)
    await nodes.originate(
        "PJSIP/agent1", channel_id=leg, app_args=f"agent,{key}", caller_id="x",
        timeout_s=15, originator=key,
    )  # fmt: skip
    await nodes.answer(key)
    await nodes.create_bridge(naming.bridge(key))
    await nodes.add_to_bridge(naming.bridge(key), [key, leg])
    await nodes.play(key, ["sound:x"], naming.hold_playback(key))
    assert await nodes.playback_exists(naming.prompt_playback(key))
    assert await nodes.live_recording_exists(naming.recording(3, key))
    await nodes.hangup(leg)
    assert await nodes.get_variable(key, "CHANNEL(linkedid)") == "b"
    assert fakes["a"].requests == []
    assert [what for what, _ in fakes["b"].requests] == [
        "ring", "originate", "answer", "bridge", "add", "play", "playback?", "recording?",
        "hangup", "get_variable",
    ]  # fmt: skip
    assert fakes["b"].requests[1][1] == ("PJSIP/agent1", leg, key)


async def test_an_id_on_no_node_is_not_found() -> None:
    nodes, fakes = cluster("a", "b")
    with pytest.raises(AriNotFound):
        await nodes.hangup("1796552974.1")
    assert fakes["a"].requests == fakes["b"].requests == []


async def test_one_node_owns_every_id_as_before() -> None:
    nodes, fakes = cluster("a")
    await nodes.hangup("1796552974.1")
    fakes["a"].connected.clear()  # published all the same: as before, to the one node
    await nodes.set_global("TELEVIKAR_WAITING_1", "0")
    assert [what for what, _ in fakes["a"].requests] == ["hangup", "global"]
    assert nodes.owns(nodes.nodes[0])("anything")


async def test_lists_merge_the_nodes_and_leave_out_a_node_that_is_down() -> None:
    nodes, fakes = cluster("a", "b", "c", down=("c",))
    fakes["a"].channels = [{"id": "a-1.1"}]
    fakes["b"].channels = [{"id": "b-1.1"}, {"id": "b-1.2"}]
    assert [c["id"] for c in await nodes.list_channels()] == ["a-1.1", "b-1.1", "b-1.2"]


async def test_presence_goes_to_the_nodes_that_are_up() -> None:
    nodes, fakes = cluster("a", "b", down=("b",))
    await nodes.set_device_state("agent-agent1", "INUSE")
    assert fakes["a"].requests == [("device", ("agent-agent1", "INUSE"))]
    # Reaching no node is an error: Presence publishes the value again later.
    fakes["a"].connected.clear()
    with pytest.raises(AriUnavailable):
        await nodes.set_global("TELEVIKAR_WAITING_1", "2")


async def test_status_counts_calls_per_node() -> None:
    nodes, _ = cluster("a", "b", down=("b",))
    status = nodes.status(["a-1.1", "b-1.2", "b-1.3", "x-1.4"])
    assert status == [
        {"name": "a", "up": True, "calls": 1},
        {"name": "b", "up": False, "calls": 2},
    ]


def test_a_phone_is_reachable_while_any_node_reaches_it() -> None:
    changes: list[tuple[str, bool]] = []
    phones = PhoneReachability(lambda endpoint, ok: changes.append((endpoint, ok)))
    a, b = phones.reporter("a"), phones.reporter("b")
    a("agent1", False)
    b("agent1", True)
    a("agent1", True)
    b("agent1", False)
    assert changes == [("agent1", False), ("agent1", True)]
    # Node a's AMI is lost: what it said is forgotten, b's word counts.
    phones.lost("a")()
    assert changes[-1] == ("agent1", False)
    assert phones.reachable("agent1") is False
    a("agent1", True)  # a is back and reports again
    assert changes[-1] == ("agent1", True)


def test_nodes_are_read_as_json_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "TELEVIKAR_NODES",
        '[{"name": "a", "ari_url": "http://127.0.1.11:8088/", "ari_password": "pa",'
        ' "ami_host": "127.0.1.11", "recording_spool": "/srv/a/recording",'
        ' "cdr_file": "/srv/a/Master.csv"},'
        ' {"name": "b", "ari_url": "http://127.0.1.12:8088/", "cdr_file": null}]',
    )
    settings = Settings()
    a, b = settings.node_list()
    assert (a.name, a.ari_password.get_secret_value(), a.ami_host) == ("a", "pa", "127.0.1.11")
    assert str(a.fallback_dir) == "/srv/a/recording/fallback"
    assert (b.name, b.cdr_file, b.ami_port) == ("b", None, 5038)


def test_without_nodes_the_single_node_settings_are_the_one_node(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TELEVIKAR_NODES", raising=False)
    monkeypatch.setenv("TELEVIKAR_ARI_URL", "http://127.0.0.9:8088/")
    (node,) = Settings().node_list()
    assert (node.name, node.ari_url) == ("", "http://127.0.0.9:8088/")
    assert node.fallback_dir == Settings().fallback_dir


@pytest.mark.parametrize(
    "nodes",
    [
        '[{"name": "a", "ari_url": "x"}, {"name": "a", "ari_url": "y"}]',  # twice
        '[{"name": "a-b", "ari_url": "x"}]',  # a dash would make ids ambiguous
        '[{"name": "a"}]',  # no ARI
    ],
)
def test_bad_node_lists_are_refused(monkeypatch: pytest.MonkeyPatch, nodes: str) -> None:
    monkeypatch.setenv("TELEVIKAR_NODES", nodes)
    with pytest.raises(ValueError, match="nodes"):
        Settings()


def test_a_node_down_for_lost_after_s_is_lost_once_until_it_is_back() -> None:
    nodes, fakes = cluster("a", "b")
    now = [T0]
    lost: list[tuple[str, datetime]] = []
    watch = NodeWatch(
        nodes, 5.0, lambda node, since: lost.append((node.name, since)), lambda: now[0]
    )

    def at(seconds: float) -> None:
        now[0] = T0 + timedelta(seconds=seconds)
        watch.check()

    at(0)
    fakes["a"].connected.clear()  # its websocket closed
    at(1)
    at(4)  # a reconnect that takes a moment is no loss
    fakes["a"].connected.set()
    at(5)
    fakes["a"].connected.clear()
    at(7)
    at(11.9)
    assert lost == []
    at(12)
    at(20)
    assert lost == [("a", T0 + timedelta(seconds=7))]
    fakes["a"].connected.set()
    at(21)
    fakes["a"].connected.clear()
    at(22)
    at(27)
    assert lost[1:] == [("a", T0 + timedelta(seconds=22))]


async def test_a_node_whose_systemname_is_not_its_name_is_reported() -> None:
    nodes, fakes = cluster("a", "b", "c", down=("c",))
    fakes["b"].systemname = "asterisk"  # asterisk.conf without systemname = b
    a, b, c = nodes.nodes
    assert await nodes.check_name(a)
    assert not await nodes.check_name(b)
    assert await nodes.check_name(c)  # down: not known, not refused
    single, fake = cluster("a")
    fake["a"].systemname = ""
    assert await single.check_name(single.nodes[0])  # one node: any name, as before
    assert fake["a"].requests == []
