"""The service's loopback control API, for the operator's command line.

    GET  /status                           the live desk (``televikar-pbx status``);
                                           with several nodes, each node up or
                                           down and its calls; the customers the
                                           forwarding watch flags
    POST /agents/{id}/{login|logout|pause|resume}
    POST /reload                           re-read customers and agents from the database

It listens on 127.0.0.1 only; the command line persists agent states in the database
first, then tells the running service here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web

from televikar_pbx.calls.presence import snapshot
from televikar_pbx.calls.services import CallService
from televikar_pbx.domain import acd

log = structlog.get_logger("televikar_pbx.control")

ACTIONS: dict[str, type[acd.AgentEvent]] = {
    "login": acd.AgentLoggedIn,
    "logout": acd.AgentLoggedOut,
    "pause": acd.AgentPaused,
    "resume": acd.AgentResumed,
}


NodeStatus = Callable[[], list[dict[str, Any]]]
ForwardingStatus = Callable[[], dict[str, Any]]


def make_app(
    calls: CallService,
    reload: Callable[[], Awaitable[None]],
    nodes: NodeStatus | None = None,
    forwarding: ForwardingStatus | None = None,
) -> web.Application:
    async def status(request: web.Request) -> web.Response:
        body = snapshot(calls.view(), calls.directory, calls.calls, calls.clock.now())
        if nodes is not None:
            body["nodes"] = nodes()
        if forwarding is not None:
            body["forwarding"] = forwarding()
        return web.json_response(body)

    async def agent_action(request: web.Request) -> web.Response:
        action = request.match_info["action"]
        try:
            agent_id = int(request.match_info["agent_id"])
        except ValueError:
            raise web.HTTPBadRequest(text="agent id must be a number") from None
        if action not in ACTIONS:
            raise web.HTTPNotFound(text=f"unknown action {action!r}")
        if calls.view().agent(agent_id) is None:
            raise web.HTTPNotFound(text=f"no agent {agent_id} in the running service")
        try:
            await calls.agent_event(ACTIONS[action](agent_id), calls.clock.now())
        except acd.IllegalEvent as exc:
            raise web.HTTPConflict(text=str(exc)) from None
        view = calls.view().agent(agent_id)
        state = view.state.value if view else None
        log.info("control.agent", agent_id=agent_id, action=action, state=state)
        return web.json_response({"agent_id": agent_id, "state": state})

    async def do_reload(request: web.Request) -> web.Response:
        await reload()
        return web.json_response(
            {"customers": len(calls.directory.customers), "agents": len(calls.directory.agents)}
        )

    app = web.Application()
    app.router.add_post("/reload", do_reload)
    app.router.add_get("/status", status)
    app.router.add_post("/agents/{agent_id}/{action}", agent_action)
    return app


async def start_control(
    calls: CallService,
    reload: Callable[[], Awaitable[None]],
    port: int,
    nodes: NodeStatus | None = None,
    forwarding: ForwardingStatus | None = None,
) -> web.AppRunner:
    runner = web.AppRunner(make_app(calls, reload, nodes, forwarding), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    log.info("control.listening", address=f"127.0.0.1:{port}")
    return runner
