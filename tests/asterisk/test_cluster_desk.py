"""One desk over all nodes (issue 16, part B): ``televikar-pbx serve`` with
TELEVIKAR_NODES connected to both Asterisk nodes of the cluster lab (conftest.py
``cluster``: Kamailio in front of nodes a and b), agents' phones registered at Kamailio,
carrier calls spread over the nodes by Kamailio. One agent pool and one queue: each
call is answered by whichever agent is free, whatever node the agent's last call was
on. The desk runs on the cluster lab's PostgreSQL, the database Kamailio authenticates
the phones against (emptied before each test). Fails, never skips, when the cluster
cannot start.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from lab.cluster import (
    AGENT_BASE_PORT,
    AGENT_IP,
    CARRIER_IP,
    KAMAILIO_IP,
    SIP_PORT,
    Cluster,
    agent_address,
)
from televikar_pbx.db import migrate
from televikar_pbx.db.engine import make_engine, make_sessionmaker
from televikar_pbx.db.records import CallRecord
from televikar_pbx.db.repositories import DirectoryRepository
from televikar_pbx.domain.calendar import Agreement
from televikar_pbx.domain.directory import CustomerRules
from tests.asterisk import sipp
from tests.asterisk.conftest import REPO, Service, free_port, poll
from tests.helpers import in_thread, run_async

KAMAILIO = (KAMAILIO_IP, SIP_PORT)
DID = "4721000011"
AGENTS = (1, 2, 3)  # three agents over two nodes: each one's calls alternate nodes
# Logged in and serving the customer, but no phone registered at Kamailio: the nodes'
# qualify (lab/cluster.py) finds it unreachable, and the desk never offers it a call.
UNREGISTERED = 4


def node_of(call: CallRecord) -> str:
    """The node a call was on: its channel id starts with the node's systemname."""
    return call.channel_id.split("-", 1)[0]


@pytest.fixture
def desk(live: Cluster, tmp_path: Path) -> Iterator[Service]:
    """``serve`` over both nodes: :func:`running_desk`."""
    with running_desk(live, tmp_path) as service:
        yield service


def register(live: Cluster, tmp_path: Path, n: int, expires_s: int = 300) -> sipp.CarrierResult:
    """agentN's phone registers at Kamailio with its secret (digest authentication)."""
    return sipp.register_at(
        f"agent{n}", live.agent_secret(f"agent{n}"), workdir=tmp_path,
        address=agent_address(n), target=KAMAILIO, expires_s=expires_s,
    )  # fmt: skip


def service_env(live: Cluster, tmp_path: Path, settings: dict[str, str]) -> dict[str, str]:
    """``serve`` over every node of the cluster lab, on its database (PostgreSQL: the
    one Kamailio reads the agents' secrets from)."""
    return {
        **os.environ,
        "TELEVIKAR_ENV_FILE": str(tmp_path / "no.env"),  # every setting is here
        **live.service_settings(),  # nodes, SIP front, database
        "TELEVIKAR_LOG_FORMAT": "json",
        "TELEVIKAR_LOG_LEVEL": "debug",
        "TELEVIKAR_MESSAGES_DIR": str(tmp_path / "messages"),
        "TELEVIKAR_SPOOL_DIR": str(tmp_path / "spool"),
        "TELEVIKAR_CONTROL_PORT": str(free_port()),
        "TELEVIKAR_AGI_PORT": str(free_port()),
        "TELEVIKAR_DELIVERY_MODE": "off",
        **settings,
    }


@contextlib.contextmanager
def running_desk(
    live: Cluster, tmp_path: Path, settings: dict[str, str] | None = None
) -> Iterator[Service]:
    """``serve`` over both nodes on the cluster's database (emptied first), one customer,
    agents 1 to 4 serving it with no wrap-up (the desk offers to the longest idle), each
    with its phone secret; agents 1 to 3's phones registered at Kamailio (digest auth)
    and answering, agent 4's not; the desk sees which. ``settings``: more of its
    environment (TELEVIKAR_*)."""
    live.db.reset()
    db_url = live.db.url
    in_thread(migrate.upgrade, db_url)

    async def seed() -> dict[str, int]:
        engine = make_engine(db_url)
        try:
            directory = DirectoryRepository(make_sessionmaker(engine))
            customer = await directory.add_customer(
                "Kunde AS", "Kunde", [DID], rules=CustomerRules(wrap_up_s=0.0),
                agreement=Agreement(date(2026, 1, 1)),
            )  # fmt: skip
            ids = {"customer": customer.id}
            for n in (*AGENTS, UNREGISTERED):
                agent = await directory.add_agent(
                    f"Agent {n}", f"agent{n}", [customer.id], logged_in=True,
                    secret=live.agent_secret(f"agent{n}"),
                )  # fmt: skip
                ids[f"agent{n}"] = agent.id
            return ids
        finally:
            await engine.dispose()

    service = Service(None, db_url, tmp_path / "serve.log", ids=run_async(seed))
    service.env = service_env(live, tmp_path, settings or {})
    for n in AGENTS:
        registered = register(live, tmp_path, n)
        assert registered.ok, registered.describe()
    with contextlib.ExitStack() as phones:
        for n in AGENTS:
            phones.enter_context(
                sipp.agent_phone(n, workdir=tmp_path, answer_ms=200, address=agent_address(n))
            )
        try:
            service.launch()
            poll(lambda: service.log().count('"service.ready"') >= len(live.nodes), 20,
                 "the service connected to every node")  # fmt: skip
            expected = {f"Agent {n}": n != UNREGISTERED for n in (*AGENTS, UNREGISTERED)}
            poll(lambda: phones_seen(service) == expected, 15,
                 f"the desk to see the phones reachable as {expected}")  # fmt: skip
            yield service
        finally:
            service.stop()
        for n in AGENTS:
            register(live, tmp_path, n, expires_s=0)


def phones_seen(service: Service) -> dict[str, bool]:
    """Each agent's phone, reachable or not, as the desk last took it (its log)."""
    seen: dict[str, bool] = {}
    for line in service.log().splitlines():
        if '"agent.phone"' in line:
            entry = json.loads(line)
            seen[entry["agent"]] = entry["reachable"]
    return seen


def status(service: Service) -> dict[str, Any]:
    """``GET /status`` of the service's control API (``televikar-pbx status --json``)."""
    url = f"http://127.0.0.1:{service.env['TELEVIKAR_CONTROL_PORT']}/status"
    with urllib.request.urlopen(url, timeout=5) as response:
        result: dict[str, Any] = json.load(response)
        return result


def report(capsys: pytest.CaptureFixture[str], text: str) -> None:
    with capsys.disabled():
        print(f"\n[cluster desk] {text}")


def test_calls_on_both_nodes_are_answered_by_one_agent_pool(
    live: Cluster, desk: Service, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    calls = 10
    result = sipp.carrier_call(
        DID, workdir=tmp_path, calls=calls, rate=1, talk_ms=1500, answer_timeout_s=20,
        target=KAMAILIO, local_ip=CARRIER_IP,
    )  # fmt: skip
    assert result.ok, result.describe()

    def all_ended() -> list[CallRecord] | None:
        rows = desk.calls()
        return rows if len(rows) >= calls and all(r.ended_at for r in rows) else None

    rows: list[CallRecord] = poll(all_ended, 15, "every call's record to end")
    per_node = Counter(node_of(r) for r in rows)
    # Exactly one record per call, each answered by an agent for the right customer.
    assert len(rows) == calls == len({r.channel_id for r in rows}), rows
    assert all(r.outcome == "answered" for r in rows), [(r.id, r.outcome) for r in rows]
    assert {r.customer_id for r in rows} == {desk.ids["customer"]}
    agents = {desk.ids[f"agent{n}"]: f"agent{n}" for n in AGENTS}
    assert {r.agent_id for r in rows} <= set(agents)
    # Kamailio spread the calls over both nodes (round-robin: 5 and 5).
    assert set(per_node) == {"a", "b"} and min(per_node.values()) >= 3, per_node

    # Offered across nodes: an agent's consecutive calls on different nodes, among
    # them a caller on a answered by an agent whose call before was on b.
    by_agent: dict[int, list[CallRecord]] = defaultdict(list)
    for r in sorted(rows, key=lambda r: r.answered_at or r.arrived_at):
        by_agent[r.agent_id or 0].append(r)
    sequences = {agents[a]: "".join(node_of(r) for r in rs) for a, rs in by_agent.items()}
    crossings = [
        (agents[a], previous.id, call.id)
        for a, rs in by_agent.items()
        for previous, call in itertools.pairwise(rs)
        if node_of(previous) == "b" and node_of(call) == "a"
    ]
    report(
        capsys,
        f"{calls} carrier calls via Kamailio: records per node {dict(per_node)}; nodes of "
        f"each agent's calls in order {sequences}; b -> a offers {len(crossings)}: "
        f"{crossings[:3]}",
    )
    assert crossings, sequences
    # The journal agrees: that call was offered to that agent, once, and answered.
    agent, _, call_id = crossings[0]
    events = desk.events(call_id)
    offered = [e.agent_id for e in events if e.type == "offered"]
    assert offered == [desk.ids[agent]], [(e.type, e.agent_id) for e in events]
    # One offer a call, never to the agent whose phone is not registered (presence
    # from both nodes' qualify through Kamailio).
    offers = [e.agent_id for r in rows for e in desk.events(r.id) if e.type == "offered"]
    assert len(offers) == calls and desk.ids[f"agent{UNREGISTERED}"] not in offers, offers
    # Each node's systemname is its name (checked at connect).
    assert "cluster.node_misnamed" not in desk.log()
    # `televikar-pbx status`: both nodes up, no call left on either.
    assert status(desk)["nodes"] == [
        {"name": "a", "up": True, "calls": 0}, {"name": "b", "up": True, "calls": 0}
    ]  # fmt: skip


def test_kill_node_a_during_calls_its_calls_end_with_a_cause(
    live: Cluster, desk: Service, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """kill -9 of node a during a steady run: the calls that were on a end in their
    records when the desk lost a (TELEVIKAR_NODE_LOST_S after its websocket closed),
    stamped with the moment it closed and cause 38; the calls after the kill are
    answered on b by the same agents."""
    results: list[sipp.CarrierResult] = []
    run = threading.Thread(
        target=lambda: results.append(
            sipp.carrier_call(
                DID, workdir=tmp_path, calls=24, rate=2, talk_ms=3000, answer_timeout_s=20,
                target=KAMAILIO, local_ip=CARRIER_IP,
            )
        )
    )  # fmt: skip
    run.start()
    try:

        def talking_on_a() -> bool:
            rows = desk.calls()
            return sum(node_of(r) == "a" and r.answered_at is not None for r in rows) >= 2

        poll(talking_on_a, 20, "calls answered on node a")
        killed_at = datetime.now(UTC)
        live.node("a").kill()
    finally:
        run.join(90)
    assert results, "the carrier's sipp run did not finish"

    def all_ended() -> list[CallRecord] | None:
        rows = desk.calls()
        return rows if len(rows) >= 20 and all(r.ended_at for r in rows) else None

    # Nothing left open: the node-lost wait (5 s) plus the last calls' talk.
    rows: list[CallRecord] = poll(all_ended, 30, "every call's record to end")
    on_a = [r for r in rows if node_of(r) == "a" and r.arrived_at < killed_at]
    cut = [r for r in on_a if r.ended_at and r.ended_at > killed_at]
    after = [r for r in rows if r.arrived_at > killed_at]
    offsets = [round(((r.ended_at or killed_at) - killed_at).total_seconds(), 2) for r in cut]
    report(
        capsys,
        f"kill -9 of node a after {len(on_a)} calls on it: {len(cut)} in progress at the "
        f"kill, recorded {Counter((r.outcome, r.hangup_cause) for r in cut)}, ended "
        f"{offsets} s after the kill; {len(after)} calls after the kill, all on "
        f"{sorted({node_of(r) for r in after})}, outcomes {Counter(r.outcome for r in after)}; "
        f"status {status(desk).get('nodes')}",
    )
    assert cut, "no call was in progress on a at the kill"
    for r in cut:
        assert r.outcome in ("answered", "abandoned"), (r.id, r.outcome)
        assert r.hangup_cause == 38 and "node a lost" in (r.hangup_cause_text or ""), r
    # Stamped when the desk's websocket to a closed, not when it gave a up.
    assert all(0 <= s < 1.0 for s in offsets), offsets
    assert after and all(node_of(r) == "b" and r.outcome == "answered" for r in after), [
        (r.id, node_of(r), r.outcome) for r in after
    ]
    assert {n["name"]: (n["up"], n["calls"]) for n in status(desk)["nodes"]} == {
        "a": (False, 0), "b": (True, 0)
    }  # fmt: skip


def test_a_busy_lamp_through_kamailio_sees_another_agent_busy(
    live: Cluster, desk: Service, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """agent1's busy-lamp key (a SUBSCRIBE from agent1's credentials) watches agent2
    through Kamailio: challenged (407), sent to a node with Kamailio's agent header,
    record-routed; the node's NOTIFYs come back through Kamailio; once every agent is
    busy on a carrier call the NOTIFY shows agent2 in a call (confirmed); the phone
    refreshes the subscription in its dialog, then ends it."""
    watcher = (AGENT_IP, AGENT_BASE_PORT + 20)  # not agent1's answering phone's port
    with ThreadPoolExecutor(1) as pool:
        watching = pool.submit(
            sipp.subscribe_at, "agent-agent2", user="agent1",
            password=live.agent_secret("agent1"), workdir=tmp_path, address=watcher,
            target=KAMAILIO,
        )  # fmt: skip

        def subscribed() -> list[str]:
            return [
                n.name for n in live.nodes
                if "agent-agent2" in n.cli("pjsip show subscriptions inbound")
            ]  # fmt: skip

        nodes: list[str] = poll(subscribed, 15, "agent1's subscription on a node")
        call = sipp.carrier_call(
            DID, workdir=tmp_path, calls=len(AGENTS), rate=len(AGENTS), talk_ms=4000,
            max_concurrent=len(AGENTS), answer_timeout_s=20, target=KAMAILIO,
            local_ip=CARRIER_IP,
        )  # fmt: skip
        result = watching.result(timeout=90)
    messages = result.messages()
    subscribes = sipp.final_statuses(messages, "SUBSCRIBE")
    notifies = [m for m in messages if m.method == "NOTIFY" and m.direction == "received"]
    states = [re.findall(r"<state>(\w+)</state>", n.text) for n in notifies]
    node_ips = {n.spec.ip: n.name for n in live.nodes}
    from_nodes = {
        name for n in notifies for ip, name in node_ips.items() if ip in n.headers("Via")[-1]
    }
    report(
        capsys,
        f"busy lamp via Kamailio: SUBSCRIBE answers {subscribes}, subscribed on {nodes}, "
        f"NOTIFY states {states} from {sorted(from_nodes)}; carrier "
        f"{call.describe()}",
    )
    assert call.ok, call.describe()
    assert result.ok, result.describe()
    # Challenged, subscribed, refreshed in the dialog, ended.
    assert subscribes == [407, 200, 200, 200], subscribes
    assert len(nodes) == 1, nodes
    assert all(n.header("Event") == "dialog" for n in notifies)
    # Each NOTIFY came through Kamailio (its Via on top), from the node subscribed.
    assert all(KAMAILIO_IP in (n.headers("Via") or [""])[0] for n in notifies)
    assert from_nodes == set(nodes), from_nodes
    assert "confirmed" not in states[0], states
    assert any("confirmed" in st for st in states), states
    assert "terminated" in (notifies[-1].header("Subscription-State") or "")


# Kamailio's ring timeout (lab/kamailio.py ring_timeout_ms): a node silent this long
# after a provisional reply is taken for dead, its caller sent to the next node.
RING_TIMEOUT_S = 7.0


def test_callers_queued_on_a_node_that_dies_are_queued_again_on_the_other(
    live: Cluster, desk: Service, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Three agents busy, more callers waiting unanswered (180 Ringing, the desk rings
    again every second); kill -9 of node a: each caller that waited on a is sent by
    Kamailio, in the same INVITE transaction, to b within the ring timeout of the kill
    (its node silent that long), queued there and answered by an agent; none waits
    for Kamailio's 120 s fr_inv_timer, none gets a final failure. Before the kill no
    waiting caller was moved (the nodes' 180s kept their transactions alive)."""
    seen_before = len(live.kamailio.events())
    results: list[sipp.CarrierResult] = []
    # Round-robin: calls 1-3 (a, b, a) take the three agents for 15 s, 4-7 wait
    # (b, a, b, a).
    calls = 7
    run = threading.Thread(
        target=lambda: results.append(
            sipp.carrier_call(
                DID, workdir=tmp_path, calls=calls, rate=4, talk_ms=15000,
                max_concurrent=calls, answer_timeout_s=60, target=KAMAILIO,
                local_ip=CARRIER_IP,
            )
        )
    )  # fmt: skip
    run.start()
    try:

        def waiting_on_a() -> list[CallRecord] | None:
            rows = desk.calls()
            waiting = [r for r in rows if node_of(r) == "a" and r.answered_at is None]
            busy = sum(r.answered_at is not None for r in rows)
            return waiting if len(rows) == calls and busy == len(AGENTS) and waiting else None

        waiting: list[CallRecord] = poll(waiting_on_a, 20, "callers waiting on node a")
        # Waiting for a while already: ringing again kept their INVITEs alive.
        time.sleep(RING_TIMEOUT_S + 1)
        before_kill = live.kamailio.events()[seen_before:]
        killed_at = time.time()  # Kamailio logs the wall clock too
        live.node("a").kill()
    finally:
        run.join(120)
    assert results, "the carrier's sipp run did not finish"
    carrier = results[0]
    a, b = live.node("a").spec.sip_uri, live.node("b").spec.sip_uri
    events = live.kamailio.events()[seen_before:]
    first_node = {}
    for e in events:
        if e.kind == "call":
            first_node.setdefault(e.call_id, e.node)
    silent = {e.call_id: e.at - killed_at for e in events if e.kind == "silent"}
    moved = {
        e.call_id: e.at - killed_at for e in events
        if e.kind == "failover" and e.node == b and e.call_id in silent
    }  # fmt: skip
    statuses = sipp.final_status_by_call(carrier.messages())

    def all_ended() -> list[CallRecord] | None:
        rows = desk.calls()
        return rows if all(r.ended_at for r in rows) and len(rows) >= calls + len(moved) else None

    rows: list[CallRecord] = poll(all_ended, 40, "every call's record to end")
    on_b_later = [r for r in rows if node_of(r) == "b" and r.arrived_at.timestamp() > killed_at]
    report(
        capsys,
        f"kill -9 of node a with {len(waiting)} callers waiting on it: "
        f"{len(moved)} sent on to b by Kamailio at {sorted(round(t, 2) for t in moved.values())} "
        f"s after the kill (ring timeout {RING_TIMEOUT_S:.0f} s, re-ring 1 s); their final "
        f"answers {[statuses.get(c) for c in moved]}; records arriving on b after the kill "
        f"{Counter(r.outcome for r in on_b_later)}; carrier: {carrier.describe()}",
    )
    assert not [e for e in before_kill if e.kind in ("silent", "failed")], before_kill
    assert all(first_node.get(c) == a for c in silent), (silent, first_node)
    assert len(moved) == len(silent) == len(waiting), (moved, silent, waiting)
    assert all(0 < t < RING_TIMEOUT_S + 1.0 for t in moved.values()), moved
    # Answered on b by an agent: queued there like any caller.
    assert all(statuses.get(c) == 200 for c in moved), {c: statuses.get(c) for c in moved}
    assert len(on_b_later) == len(moved), on_b_later
    assert all(r.outcome == "answered" for r in on_b_later), on_b_later


def test_the_standby_takes_over_both_nodes_when_the_leader_is_killed(
    live: Cluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Leader and standby over both nodes, on PostgreSQL (issue 16 together): kill -9 of
    the leading ``serve`` during a steady run through Kamailio; the standby takes the
    lease and connects to both nodes' ARI within 5 s, adopts the calls on either node,
    and every caller is answered by an agent, one record each."""
    cluster = {"TELEVIKAR_CLUSTER_MODE": "leader-standby", "TELEVIKAR_CLUSTER_NODE_NAME": "desk-1"}
    with running_desk(live, tmp_path, cluster) as leader:
        standby = replace(
            leader, log_path=tmp_path / "standby.log", process=None,
            env={**leader.env, "TELEVIKAR_CLUSTER_NODE_NAME": "desk-2",
                 "TELEVIKAR_SPOOL_DIR": str(tmp_path / "standby-spool")},
        )  # fmt: skip
        standby.launch(ready="service.standing_by")
        results: list[sipp.CarrierResult] = []
        calls = 12
        run = threading.Thread(
            target=lambda: results.append(
                sipp.carrier_call(
                    DID, workdir=tmp_path, calls=calls, rate=1, talk_ms=4000,
                    max_concurrent=calls, answer_timeout_s=30, target=KAMAILIO,
                    local_ip=CARRIER_IP,
                )
            )
        )  # fmt: skip
        run.start()
        try:
            poll(lambda: len(leader.calls()) >= 4, 20, "four calls in the database")
            at_kill = leader.calls()
            killed = time.monotonic()
            leader.stop(signal.SIGKILL)
            poll(lambda: standby.log().count('"service.ready"') >= len(live.nodes), 10,
                 "the standby connected to every node")  # fmt: skip
            took = time.monotonic() - killed
        finally:
            run.join(120)
            standby_log = standby.log()
            standby.stop()
    assert results, "the carrier's sipp run did not finish"
    result = results[0]

    def all_ended() -> list[CallRecord] | None:
        rows = standby.calls()
        return rows if len(rows) >= calls and all(r.ended_at for r in rows) else None

    rows: list[CallRecord] = poll(all_ended, 20, "every call's record to end")
    per_node = Counter(node_of(r) for r in rows)
    report(
        capsys,
        f"leader killed with {len(at_kill)} calls in the database (on "
        f"{dict(Counter(node_of(r) for r in at_kill))}); the standby led and was connected "
        f"to both nodes {took:.2f} s after the kill; records per node {dict(per_node)}",
    )
    assert took < 5.0
    assert '"cluster.leading"' in standby_log and "generation" in standby_log
    assert result.ok, result.describe()  # every caller answered by an agent
    assert len(rows) == calls == len({r.channel_id for r in rows}), rows
    assert all(r.outcome == "answered" for r in rows), [(r.id, r.outcome) for r in rows]
    assert set(per_node) == {"a", "b"}, per_node
    for r in rows:
        assert [e.type for e in standby.events(r.id)].count("ended") == 1


def cli(service: Service, *args: str) -> str:
    """``televikar-pbx ARGS`` as the operator runs it beside the running desk (its
    database and control port); its output. Fails the test on a non-zero exit."""
    done = subprocess.run(
        [sys.executable, "-m", "televikar_pbx.cli", *args],
        env=service.env, capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, f"televikar-pbx {' '.join(args)}:\n{done.stdout}{done.stderr}"
    return done.stdout


def test_an_agent_added_with_the_cli_answers_calls_on_both_nodes(
    live: Cluster, desk: Service, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The operator adds two agents with ``televikar-pbx agents add`` while the desk
    runs; each phone registers at Kamailio with digest auth. Kari's with her secret:
    she answers the new customer's calls, which land on both nodes. Ola's phone with a
    wrong password: refused at Kamailio, so unreachable from every node, and never
    offered a call although logged in and answering. Kari unregistered is unreachable
    again."""
    did = "4721000099"
    customer = desk.directory(
        lambda r: r.add_customer(
            "Ny Kunde AS", "Ny Kunde", [did], rules=CustomerRules(wrap_up_s=0.0),
            agreement=Agreement(date(2026, 1, 1)),
        )
    )  # fmt: skip
    secrets = {"kari": "kari-secret-0001", "ola": "ola-secret-00001"}
    for name, endpoint in (("Kari", "kari"), ("Ola", "ola")):
        out = cli(desk, "agents", "add", name, "--endpoint", endpoint,
                  "--secret", secrets[endpoint], "--customer", str(customer.id))  # fmt: skip
        assert "the running service reloaded" in out, out
        cli(desk, "agents", "login", endpoint)
    # The service wrote both agents onto both nodes, reached through Kamailio.
    for node in live.nodes:
        generated = (node.state / "etc" / "pjsip_televikar.conf").read_text()
        assert f"contact = sip:kari@{KAMAILIO_IP}:{SIP_PORT}" in generated, generated
        assert "match_header = X-Televikar-Agent: ola" in generated, generated
    kari, ola = agent_address(6), agent_address(7)
    registered = sipp.register_at(
        "kari", secrets["kari"], workdir=tmp_path, address=kari, target=KAMAILIO
    )
    assert registered.ok, registered.describe()
    refused = sipp.register_at(
        "ola", "wrong-password-1", workdir=tmp_path, address=ola, target=KAMAILIO
    )
    assert sipp.final_statuses(refused.messages(), "REGISTER") == [401, 403], refused.describe()
    assert set(live.kamailio.registered()) >= {"kari"} and "ola" not in live.kamailio.registered()
    calls = 6
    try:
        with (
            sipp.agent_phone(6, workdir=tmp_path, answer_ms=200, address=kari) as kari_phone,
            sipp.agent_phone(7, workdir=tmp_path, answer_ms=200, address=ola) as ola_phone,
        ):
            seen = {"Kari": True, "Ola": False}
            poll(lambda: {k: phones_seen(desk).get(k) for k in seen} == seen, 15,
                 f"the desk to see the new phones reachable as {seen}")  # fmt: skip
            result = sipp.carrier_call(
                did, workdir=tmp_path, calls=calls, rate=0.5, talk_ms=1000,
                answer_timeout_s=20, target=KAMAILIO, local_ip=CARRIER_IP,
            )  # fmt: skip
            assert result.ok, result.describe()

            def ended() -> list[CallRecord] | None:
                rows = [r for r in desk.calls() if r.customer_id == customer.id]
                return rows if len(rows) >= calls and all(r.ended_at for r in rows) else None

            rows: list[CallRecord] = poll(ended, 15, "the new customer's calls to end")
            offered = [e.agent_id for r in rows for e in desk.events(r.id) if e.type == "offered"]
            ids = {a.endpoint: a.id for a in desk.directory(lambda r: r.list_agents())}
            per_node = Counter(node_of(r) for r in rows)
            report(
                capsys,
                f"agents added with the CLI: {calls} calls, records per node "
                f"{dict(per_node)}, answered by {Counter(r.agent_id for r in rows)} "
                f"(kari {ids['kari']}); INVITEs at kari's phone {len(kari_phone.invites())}, "
                f"at ola's {len(ola_phone.invites())}",
            )
            assert all(r.outcome == "answered" and r.agent_id == ids["kari"] for r in rows), [
                (r.id, r.outcome, r.agent_id) for r in rows
            ]
            assert set(per_node) == {"a", "b"}, per_node
            assert offered == [ids["kari"]] * calls, offered
            assert len(kari_phone.invites()) == calls and ola_phone.invites() == []
            # Reachable only while registered: her registration gone at Kamailio (as at
            # its expiry; her phone still runs and holds its port), the nodes' qualify
            # through Kamailio gets no answer.
            live.kamailio.rpc("ul.rm", "location", "kari")
            assert "kari" not in live.kamailio.registered()
            poll(lambda: phones_seen(desk).get("Kari") is False, 10,
                 "the desk to see Kari's phone unreachable once unregistered")  # fmt: skip
    finally:
        sipp.register_at(
            "kari", secrets["kari"], workdir=tmp_path, address=kari, target=KAMAILIO,
            expires_s=0,
        )  # fmt: skip


def test_feature_codes_through_kamailio_log_an_agent_out_and_in_on_both_nodes(
    live: Cluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """agent1 dials *46 and *45 from its phone through Kamailio (407, then relayed to a
    node with the authenticated agent in Kamailio's header): the desk logs it out and
    in, and the database keeps it. The two calls go to both nodes (round-robin); with
    node a killed, the next *46 reaches b and works the same."""
    # The nodes' dialplan names the FastAGI port 4573 (extensions.conf).
    with running_desk(live, tmp_path, {"TELEVIKAR_AGI_PORT": "4573"}) as service:
        agent_id = service.ids["agent1"]

        def dial(code: str, name: str) -> str:
            result = sipp.feature_code_call(
                code, workdir=tmp_path, user="agent1", password=live.agent_secret("agent1"),
                local_ip=agent_address(1)[0], target=KAMAILIO, name=name,
            )  # fmt: skip
            assert result.ok, result.describe()
            assert result.invite_statuses() == [407, 200], result.describe()
            call_id = next(m.call_id for m in result.messages() if m.method == "INVITE")
            sent = [e.node for e in live.kamailio.events()
                    if e.call_id == call_id and e.kind in ("call", "failover")]  # fmt: skip
            return sent[-1]

        def state() -> tuple[bool, str]:
            agent = service.directory(lambda r: r.get_agent(agent_id))
            desk_view = {a["name"]: a["state"] for a in status(service)["agents"]}
            return agent.logged_in, desk_view["Agent 1"]

        nodes = [dial("*46", "logout")]
        poll(lambda: state() == (False, "logged_out"), 10, "agent1 logged out")
        nodes.append(dial("*45", "login"))
        poll(lambda: state() == (True, "idle"), 10, "agent1 logged in")
        live.node("a").kill()
        after_kill = dial("*46", "logout_after_kill")
        poll(lambda: state() == (False, "logged_out"), 10, "agent1 logged out after the kill")
        features = [
            json.loads(line) for line in service.log().splitlines() if '"feature.done"' in line
        ]
        report(
            capsys,
            f"feature codes via Kamailio: *46 on {nodes[0]}, *45 on {nodes[1]}, "
            f"*46 after kill -9 of a on {after_kill}; desk: {len(features)} feature.done",
        )
    uris = {n.name: n.spec.sip_uri for n in live.nodes}
    assert sorted(nodes) == sorted(uris.values()), nodes
    assert after_kill == uris["b"]
    assert [(f["endpoint"], f["code"]) for f in features] == [
        ("agent1", "*46"),
        ("agent1", "*45"),
        ("agent1", "*46"),
    ], features
