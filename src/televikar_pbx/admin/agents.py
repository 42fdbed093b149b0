"""``televikar-pbx agents add|list|login|logout|pause|resume``.

A state change is saved first, then the running service is told over its loopback
control API; a service that is not running picks the saved state up when it starts.
"""

from __future__ import annotations

import argparse
from typing import Any

from televikar_pbx.admin import control, render, session
from televikar_pbx.admin.inputs import AgentInput, generate_secret
from televikar_pbx.db.repositories import DirectoryRepository
from televikar_pbx.domain.directory import Agent
from televikar_pbx.settings import Settings

# action -> (what set_agent_state stores, what the agent is then, help)
STATES: dict[str, tuple[dict[str, bool], str, str]] = {
    "login": ({"logged_in": True, "paused": False}, "logged in", "log an agent in (available)"),
    "logout": ({"logged_in": False, "paused": False}, "logged out", "log an agent out"),
    "pause": ({"paused": True}, "paused", "pause a logged-in agent (no calls offered)"),
    "resume": ({"paused": False}, "resumed", "end an agent's pause"),
}


def register(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser("agents", help="agents and their phones")
    actions = parser.add_subparsers(dest="agents_command", required=True, metavar="ACTION")

    add = actions.add_parser(
        "add",
        help="add an agent",
        description="Add an agent. Without --secret one is generated and printed once.",
    )
    add.add_argument("name", metavar="NAME")
    add.add_argument("--endpoint", required=True, help="the PJSIP endpoint of the phone")
    add.add_argument("--secret", help="the phone's password (12+ characters; default: generated)")
    add.add_argument(
        "--contact", metavar="URI", help="a static contact, for phones that do not register"
    )
    add.add_argument(
        "--customer",
        dest="customers",
        action="append",
        required=True,
        metavar="C[:PRIORITY]",
        help="a customer served (name or id); priority 0 (default) is first choice",
    )
    add.set_defaults(func=cmd_add)

    listing = actions.add_parser("list", help="all agents (never their secrets)")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_list)

    for action, (_, _, help_text) in STATES.items():
        change = actions.add_parser(action, help=help_text)
        change.add_argument("agent", metavar="AGENT", help="endpoint, id or name")
        change.set_defaults(func=cmd_state, agent_action=action)


def cmd_add(settings: Settings, args: argparse.Namespace) -> int:
    given: dict[str, Any] = {"name": args.name, "endpoint": args.endpoint}
    given |= {"secret": args.secret, "contact": args.contact, "customers": args.customers}
    spec = session.checked(AgentInput, given)
    secret = spec.secret or generate_secret()

    async def work(repo: DirectoryRepository) -> Agent:
        priorities: dict[int, int] = {}
        for key, priority in spec.customers:
            customer = await repo.find_customer(key)
            if customer.id in priorities:
                raise ValueError(f"--customer {customer.name!r} is given twice")
            priorities[customer.id] = priority
        return await repo.add_agent(
            spec.name, spec.endpoint, priorities, secret=secret, contact=spec.contact
        )

    agent = session.run(settings, work)
    print(f"added agent {agent.id} {agent.name!r} on endpoint {agent.endpoint}")
    if spec.secret is None:
        print(f"secret: {secret}")
        print("(shown only now: set it on the phone)")
    control.reload_after_change(settings.control_port)
    return 0


def cmd_list(settings: Settings, args: argparse.Namespace) -> int:
    async def work(repo: DirectoryRepository) -> str:
        agents = await repo.list_agents()
        customers = {c.id: c for c in await repo.list_customers()}
        credentials = {c.agent_id: c for c in await repo.agent_credentials()}
        if args.json:
            return render.dumps(
                [render.agent_json(a, customers, credentials.get(a.id)) for a in agents]
            )
        return render.agents_table(agents, customers, credentials)

    print(session.run(settings, work))
    return 0


def cmd_state(settings: Settings, args: argparse.Namespace) -> int:
    action: str = args.agent_action
    values, done, _ = STATES[action]

    async def work(repo: DirectoryRepository) -> Agent:
        agent = await repo.find_agent(args.agent)
        if "logged_in" not in values and not agent.logged_in:
            raise ValueError(f"agent {agent.name!r} ({agent.endpoint}) is logged out: log in first")
        await repo.set_agent_state(agent.id, **values)
        return agent

    agent = session.run(settings, work)
    label = f"agent {agent.id} {agent.name!r} ({agent.endpoint})"
    try:
        delivered = control.notify_agent(settings.control_port, agent.id, action)
    except control.ControlError as exc:
        raise control.ControlError(
            f"{label}: {action} is saved, but the running service did not take it: {exc}"
        ) from None
    if delivered:
        print(f"{label} {done}")
    else:
        print(f"{label} {done} (saved; the service is not running and will use it when it starts)")
    return 0
