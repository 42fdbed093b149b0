"""Wiring: the only place where adapters and services are built and connected."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import structlog

from televikar_pbx.ari.adapter import AriClient, AriEvent, EventDispatcher
from televikar_pbx.calls.services import CallService
from televikar_pbx.db.engine import make_engine, make_sessionmaker
from televikar_pbx.db.repositories import CallRepository, load_directory
from televikar_pbx.domain.acd import Desk
from televikar_pbx.settings import Settings

log = structlog.get_logger("televikar_pbx.app")


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    """Run the answering desk until ``stop`` is set."""
    engine = make_engine(settings.sqlalchemy_url)
    sessionmaker = make_sessionmaker(engine)
    async with sessionmaker() as session:
        directory = await load_directory(session)
    desk = Desk()
    now = datetime.now(UTC)
    for agent in directory.agents:
        desk.add_agent(agent.id, agent.customer_ids, now)

    ari = AriClient(
        settings.ari_url,
        settings.ari_user,
        settings.ari_password.get_secret_value(),
        settings.ari_app,
        heartbeat_s=settings.ari_heartbeat_s,
        reconnect_max_s=settings.ari_reconnect_max_s,
    )

    async def handle(event: AriEvent) -> None:
        await calls.handle(event)

    dispatcher = EventDispatcher(handle)
    calls = CallService(
        ari=ari,
        store=CallRepository(sessionmaker),
        directory=directory,
        desk=desk,
        bind=dispatcher.bind,
        unbind=dispatcher.unbind,
        dispatch=dispatcher.dispatch,
        ring_timeout_s=settings.ring_timeout_s,
    )

    async def on_connected() -> None:
        log.info(
            "service.ready",
            app=settings.ari_app,
            customers=len(directory.customers),
            agents=len(directory.agents),
        )

    log.info("service.starting", database=_safe_url(settings.sqlalchemy_url))
    runner = asyncio.create_task(ari.run(dispatcher.dispatch, on_connected), name="ari")
    try:
        await stop.wait()
    finally:
        log.info("service.stopping")
        await ari.close()
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await dispatcher.drain()
        await engine.dispose()
        log.info("service.stopped")


def _safe_url(url: str) -> str:
    """A database URL without its password, for logs."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
