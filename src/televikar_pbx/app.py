"""Wiring: the only place where adapters and services are built and connected."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import os
import sys
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from televikar_pbx.agi.server import FeatureServer
from televikar_pbx.ami.presence import AmiError, AmiPresence
from televikar_pbx.ari.adapter import AriClient
from televikar_pbx.asterisk_conf import PhoneAccount, install_hints, install_phones
from televikar_pbx.calls import naming
from televikar_pbx.calls.agent_log import AgentLog
from televikar_pbx.calls.commands import ring_again_interval
from televikar_pbx.calls.events import AriEvent, EventDispatcher
from televikar_pbx.calls.fallback import import_fallback_calls
from televikar_pbx.calls.features import AgentActions, FeatureCodes
from televikar_pbx.calls.forwarding import ForwardingService
from televikar_pbx.calls.media import MediaFlows
from televikar_pbx.calls.presence import Presence
from televikar_pbx.calls.recovery import lost_with_node, reconcile
from televikar_pbx.calls.services import CallService
from televikar_pbx.calls.spool import SpoolingStore
from televikar_pbx.clock import Clock, clock_from_env
from televikar_pbx.cluster import (
    ClusterConfig,
    FencedSessions,
    FenceToken,
    LeaderElector,
)
from televikar_pbx.cluster import (
    cluster_config as cluster_config,  # for the command line: `serve` chooses
)
from televikar_pbx.cluster.nodes import Node, Nodes, NodeWatch
from televikar_pbx.cluster.phones import PhoneReachability
from televikar_pbx.control import start_control
from televikar_pbx.db.agents_repo import AgentRepository
from televikar_pbx.db.engine import make_engine, make_sessionmaker
from televikar_pbx.db.repositories import (
    CallStoreRepository,
    DirectoryRepository,
    load_directory,
)
from televikar_pbx.delivery.process import DeliveryProcess
from televikar_pbx.delivery.service import Delivery, start_delivery
from televikar_pbx.domain.acd import Desk
from televikar_pbx.domain.directory import Directory
from televikar_pbx.errors import AriError
from televikar_pbx.settings import Settings
from televikar_pbx.web import app as desk_web
from televikar_pbx.web import desk as desk_pages
from televikar_pbx.web.live import LiveDesk

log = structlog.get_logger("televikar_pbx.app")

# How often the service looks for calls the dialplan answered while it was away.
FALLBACK_SCAN_S = 5.0


async def serve(
    settings: Settings,
    stop: asyncio.Event,
    clock: Clock | None = None,
    fence: FenceToken | None = None,
) -> None:
    """Run the answering desk until ``stop`` is set; ``clock``: the command line's, else
    ``TELEVIKAR_NOW`` or the system clock. ``fence``: this process leads (leader-standby,
    :func:`serve_in_cluster`): every call record it writes proves the lease still holds,
    and they are written straight through (a spool on a dead leader's disk is out of the
    standby's reach)."""
    engine = make_engine(settings.sqlalchemy_url)
    sessionmaker = make_sessionmaker(engine)
    writes = sessionmaker if fence is None else FencedSessions(sessionmaker, fence)
    write_behind = settings.calls_write_behind and fence is None
    directory = await load_directory(sessionmaker)
    clock = clock or clock_from_env()
    desk = Desk(directory, clock.now(), ring_timeout_s=settings.ring_timeout_s)

    # Every node's ARI (TELEVIKAR_NODES; else the one of the ari_* settings), behind one
    # Telephony port that sends each request to the node of the id it names.
    nodes = Nodes(
        [
            Node(
                node,
                AriClient(
                    node.ari_url,
                    node.ari_user,
                    node.ari_password.get_secret_value(),
                    settings.ari_app,
                    heartbeat_s=settings.ari_heartbeat_s,
                    reconnect_max_s=settings.ari_reconnect_max_s,
                ),
            )
            for node in settings.node_list()
        ]
    )
    ari = nodes

    def spool_of(key: str) -> Path:
        return (nodes.owner(key) or nodes.nodes[0]).settings.recording_spool

    # Call records survive a database outage in a local spool (calls/spool.py), and
    # most are written behind the routing through it, a batch per transaction.
    @asynccontextmanager
    async def one_transaction() -> AsyncIterator[CallStoreRepository]:
        async with writes.begin() as session:
            yield CallStoreRepository(session)

    store = SpoolingStore(
        CallStoreRepository(writes),
        settings.spool_dir / "calls.jsonl",
        batch=one_transaction if write_behind else None,
    )
    store.start()
    # The agents' availability log: each agent's state from now (closing what a crash
    # left open in another state), then every change (calls/agent_log.py).
    agent_log = AgentLog(store)
    await agent_log.sync(desk.availabilities(), clock.now())
    presence = Presence(ari, directory, desk)

    async def handle(event: AriEvent) -> None:
        await calls.handle(event)

    dispatcher = EventDispatcher(handle)
    calls = CallService(
        ari=ari,
        store=store,
        directory=directory,
        desk=desk,
        bind=dispatcher.bind,
        unbind=dispatcher.unbind,
        dispatch=dispatcher.dispatch,
        media=MediaFlows(
            ari,
            store,
            recording_spool=spool_of,
            messages_dir=settings.messages_dir,
            max_message_s=settings.max_message_s,
        ),
        clock=clock,
        presence=presence,
        agent_log=agent_log,
        # The SIP front takes a node that stops ringing for dead (commands.RING_AGAIN_S).
        ring_again_s=ring_again_interval(settings.sip_front, len(settings.nodes)),
    )

    async def import_fallback(node: Node) -> None:
        folder = node.settings.fallback_dir
        try:
            await import_fallback_calls(folder, calls.directory, store, settings.messages_dir)
        except Exception:
            log.exception("fallback.import_failed", folder=str(folder))

    async def recover(node: Node, connected_at: datetime) -> None:
        """Make memory, database and the node's Asterisk agree after a (re)connection
        (the node's calls only: the other nodes' are theirs)."""
        try:
            await reconcile(
                ari=node.ari,
                store=store,
                app=settings.ari_app,
                in_memory=lambda: calls.calls,
                dispatch=dispatcher.dispatch,
                adopt=calls.adopt,
                cdr_file=node.settings.cdr_file,
                recording_spool=node.settings.recording_spool,
                messages_dir=settings.messages_dir,
                connected_at=connected_at,
                clock=clock,
                owns=nodes.owns(node),
            )
        except Exception:
            log.exception("recovery.failed", node=node.name)

    # One catch-up at a time, import before reconcile: a row being imported is open
    # until its import ends, and reconcile would take it for a call lost by a crash.
    catching_up = asyncio.Lock()

    async def catch_up(node: Node, connected_at: datetime) -> None:
        async with catching_up:
            await import_fallback(node)
            await recover(node, connected_at)

    async def scan_fallback() -> None:
        """Fallback calls end after we connected (a caller still recording when we came
        back): look for finished ones every few seconds."""
        while True:
            await asyncio.sleep(FALLBACK_SCAN_S)
            async with catching_up:
                for node in nodes.nodes:
                    await import_fallback(node)

    # Several nodes: the calls of a node we lost (NodeWatch) end as the desk saw them
    # (calls/recovery.py lost_with_node); should the node come back with any of them
    # still there (it was cut off, not dead), they are hung up to match the records.
    lost_calls: dict[str, set[str]] = {}

    def node_lost(node: Node, since: datetime) -> None:
        events = lost_with_node(calls.calls, nodes.owns(node), since, node.name)
        lost_calls.setdefault(node.name, set()).update(e.channel_id or "" for e in events)
        for event in events:
            dispatcher.dispatch(event)

    async def on_connected(node: Node) -> None:
        await nodes.check_name(node)
        try:
            await node.ari.filter_events(calls.ari_event_types())
        except AriError as exc:  # every event comes, as before: more work, no harm
            log.warning("service.event_filter_failed", node=node.name, error=str(exc))
        for key in lost_calls.pop(node.name, set()):
            for request in (node.ari.hangup(key), node.ari.destroy_bridge(naming.bridge(key))):
                with contextlib.suppress(AriError):
                    await request
        await install_node_hints(node, calls.directory)
        presence.resync()
        # Calls the dialplan answered while we were away (extensions.conf fallback), and
        # calls in progress we lost track of (restart, lost connection).
        background(catch_up(node, clock.now()))
        log.info(
            "service.ready",
            app=settings.ari_app,
            customers=len(directory.customers),
            agents=len(directory.agents),
            **({"node": node.name} if node.name else {}),
        )

    async def install_node_hints(node: Node, directory: Directory) -> None:
        try:
            await install_hints(
                node.settings.asterisk_conf_dir, directory, node.ari, settings.max_message_s,
                settings.takeover_wait_s,
            )  # fmt: skip
        except AriError as exc:
            log.warning("service.hints_failed", node=node.name, error=str(exc))

    log.info("service.starting", database=_safe_url(settings.sqlalchemy_url))
    presence.start()
    tasks: set[asyncio.Task[None]] = set()

    def background(coroutine: Coroutine[Any, Any, None]) -> None:
        """Run a coroutine from a synchronous (panoramisk) callback, keeping a reference."""
        task = asyncio.ensure_future(coroutine)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def reachability(endpoint: str, ok: bool) -> None:
        background(calls.phone_reachability(endpoint, ok))

    # A phone is reachable when any node reaches it (cluster/phones.py); one node's AMI
    # reports to the desk directly, as before.
    combined = PhoneReachability(reachability) if len(nodes.nodes) > 1 else None
    if combined and settings.sip_front is None:
        # Each phone would register at one node and be unreachable from the others.
        log.warning(
            "service.no_sip_front",
            nodes=len(nodes.nodes),
            hint="set TELEVIKAR_SIP_FRONT to the Kamailio the nodes reach phones through",
        )
    phones = [
        AmiPresence(
            node.settings.ami_host,
            node.settings.ami_port,
            node.settings.ami_user,
            node.settings.ami_password.get_secret_value(),
            combined.reporter(node.name) if combined else reachability,
            max_delay_s=settings.ari_reconnect_max_s,
            on_lost=combined.lost(node.name) if combined else None,
        )
        for node in nodes.nodes
    ]
    for ami in phones:
        ami.start()

    async def install_agent_phones() -> None:
        credentials = await AgentRepository(sessionmaker).agent_credentials()
        accounts = [PhoneAccount(c.endpoint, c.secret, c.contact) for c in credentials if c.secret]

        async def install(node: Node, ami: AmiPresence) -> None:
            try:
                await install_phones(
                    node.settings.asterisk_conf_dir, accounts, ami, settings.sip_front
                )
            except (AmiError, TimeoutError, OSError) as exc:
                log.warning("service.phones_failed", node=node.name, error=str(exc))

        # At once: a node that is down makes its own AMI wait, not the others'.
        await asyncio.gather(*map(install, nodes.nodes, phones))

    async def reload() -> None:
        """The operator changed the directory: endpoints, hints and routing follow."""
        new = await load_directory(sessionmaker)
        await install_agent_phones()
        for node in nodes.nodes:
            await install_node_hints(node, new)
        await calls.reload(new)

    background(install_agent_phones())
    features = FeatureServer(
        FeatureCodes(calls, DirectoryRepository(sessionmaker)).on_feature,
        port=settings.agi_port,
    )
    await features.start()
    # Customers whose calls stopped arriving (calls/forwarding.py): from the call log.
    forwarding = ForwardingService(
        sessionmaker,
        lambda: calls.directory,
        clock,
        history_weeks=settings.forwarding_history_weeks,
        silence_p=settings.forwarding_silence_p,
        check_s=settings.forwarding_check_s,
    )
    forwarding.start()
    control = await start_control(
        calls,
        reload,
        settings.control_port,
        nodes=(lambda: nodes.status(calls.calls)) if settings.nodes else None,
        forwarding=forwarding.flagged,
    )
    # Messages reach customers from here (delivery/), not from the nightly job.
    delivery: Delivery | DeliveryProcess | None = None
    if settings.delivery_mode == "inline":
        delivery = await start_delivery(settings, sessionmaker, clock)
    elif settings.delivery_mode == "process":
        delivery = DeliveryProcess()
        delivery.start()
    desk_web = await _start_desk_web(settings, sessionmaker, clock, calls, forwarding)
    # Everything the service needs to run is loaded now (modules, templates, the
    # directory): out of the cyclic collector's reach from here on. Its full
    # collections then walk only what calls create, not ~140,000 objects that live as
    # long as the process: they held the loop for ~75 ms every half minute under load,
    # the slowest calls routed in the benchmark (docs/performance.md).
    gc.freeze()
    # One websocket per node, each reconnecting on its own: a node that is down stops
    # nobody else. All of them feed the one dispatcher.
    runners = [
        asyncio.create_task(
            node.ari.run(dispatcher.dispatch, functools.partial(on_connected, node)),
            name=f"ari:{node.name}" if node.name else "ari",
        )
        for node in nodes.nodes
    ]
    scanner = asyncio.create_task(scan_fallback(), name="fallback-scan")
    if len(nodes.nodes) > 1:
        watch = NodeWatch(nodes, settings.node_lost_s, node_lost, clock.now)
        runners.append(asyncio.create_task(watch.run(), name="node-watch"))
    try:
        await stop.wait()
    finally:
        log.info("service.stopping")
        if desk_web is not None:
            await desk_web.cleanup()
        await control.cleanup()
        await forwarding.close()
        if delivery is not None:
            await delivery.close()
        await features.close()
        for ami in phones:
            ami.close()
        await presence.close()
        for node in nodes.nodes:
            await node.ari.close()
        for task in (*runners, scanner):
            task.cancel()
        await asyncio.gather(*runners, scanner, return_exceptions=True)
        await dispatcher.drain()
        await calls.rows_written()
        await agent_log.close(clock.now())
        await store.close()
        await engine.dispose()
        log.info("service.stopped")


async def _start_desk_web(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: Clock,
    calls: CallService,
    forwarding: ForwardingService,
) -> web.AppRunner | None:
    """The agents' desk in the browser (docs/desk-web.md), when it has its secret. A
    desk that cannot start (no secret, the port taken) leaves the calls to the phones:
    routing goes on, the log says why."""
    if not settings.web_secret.get_secret_value():
        log.warning("web.off", reason="TELEVIKAR_WEB_SECRET is not set")
        return None
    url = f"http://{settings.web_host}:{settings.web_port}/"
    app = desk_web.app_from_settings(settings, sessionmaker, clock)
    live = LiveDesk(calls)
    calls.watch(live.changed)
    forwarding.subscribe(live.set_forwarding)
    desk_pages.add_routes(
        app, sessionmaker, live, AgentActions(calls, DirectoryRepository(sessionmaker))
    )
    try:
        runner = await desk_web.start(app, settings.web_host, settings.web_port)
    except OSError as exc:  # the port is taken: calls are routed all the same
        log.error("web.failed", url=url, error=str(exc))
        return None
    log.info("web.listening", url=url)
    return runner


def _safe_url(url: str) -> str:
    """A database URL without its password, for logs."""
    return make_url(url).render_as_string(hide_password=True)


# `serve` exits with this when it lost the lease while leading (leader-standby): its
# supervisor (systemd's Restart=) starts it again, as a standby.
LOST_LEADERSHIP_EXIT = 3


async def serve_in_cluster(
    settings: Settings, stop: asyncio.Event, config: ClusterConfig, clock: Clock | None = None
) -> None:
    """Leader-standby (docs/operations.md): stand by until this process holds the lease,
    then run :func:`serve` with its fence token until ``stop``, then release the lease so
    a standby takes over at once. Losing the lease while leading (the database says so,
    or cannot be reached for the term: cluster/term.py) ends the process at once, exit
    :data:`LOST_LEADERSHIP_EXIT`: no command to Asterisk, no write after that (its
    delivery child dies with it), and the new leader adopts the calls."""
    engine = make_engine(settings.sqlalchemy_url)  # the lease's own: never behind the store
    leading: asyncio.Future[FenceToken] = asyncio.get_running_loop().create_future()

    def on_lead(token: FenceToken) -> None:
        if not leading.done():
            leading.set_result(token)

    def on_lose(reason: str) -> None:
        if reason == "released":  # our own clean stop, below
            return
        log.critical("service.leadership_lost", reason=reason, exit_code=LOST_LEADERSHIP_EXIT)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(LOST_LEADERSHIP_EXIT)

    elector = LeaderElector(make_sessionmaker(engine), config, on_lead=on_lead, on_lose=on_lose)
    elector.start()
    log.info("service.standing_by", holder=config.holder)
    stopping: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
    waits: set[asyncio.Future[Any]] = {leading, stopping}
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        if leading.done() and not stop.is_set():
            await serve(settings, stop, clock, fence=leading.result())
    finally:
        stopping.cancel()
        await elector.stop()
        await engine.dispose()
