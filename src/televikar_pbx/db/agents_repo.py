"""Agents: their phones (endpoint, secret, static contact), whom they answer for and
with which priority, and the login/pause state they were last left in.

``DirectoryRepository`` includes all of this; ``AgentRepository`` alone is enough for
code that only deals with agents (feature codes, the phone configuration).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sqlalchemy import select, update

from televikar_pbx.db import models
from televikar_pbx.db.directory_rows import load_agents
from televikar_pbx.db.repo_base import Conflict, NotFound, Repository, flush
from televikar_pbx.domain.directory import Agent


@dataclass(frozen=True, slots=True)
class AgentCredentials:
    """What Asterisk needs to let an agent's phone in (never logged: no secret in repr)."""

    agent_id: int
    endpoint: str
    secret: str | None = field(repr=False)
    contact: str | None = None


class AgentRepository(Repository):
    """Agents and whom they answer for."""

    async def list_agents(self) -> tuple[Agent, ...]:
        async with self._unit() as s:
            return await load_agents(s)

    async def get_agent(self, agent_id: int) -> Agent:
        async with self._unit() as s:
            found = await load_agents(s, [agent_id])
        if not found:
            raise NotFound(f"no agent with id {agent_id}")
        return found[0]

    async def find_agent(self, key: str) -> Agent:
        """The agent on endpoint ``key``, else with id ``key``, else named ``key`` (only
        if one agent has that name)."""
        a = models.Agent
        async with self._unit() as s:
            ids = list(await s.scalars(select(a.id).where(a.endpoint == key)))
            if not ids and key.isdigit():
                ids = list(await s.scalars(select(a.id).where(a.id == int(key))))
            if not ids:
                ids = list(await s.scalars(select(a.id).where(a.name == key).order_by(a.id)))
                if len(ids) > 1:
                    raise NotFound(
                        f"{len(ids)} agents are named {key!r} (ids {ids}): give the endpoint or id"
                    )
            if not ids:
                raise NotFound(f"no agent {key!r} (give its endpoint, id or name)")
            return (await load_agents(s, ids))[0]

    async def add_agent(
        self,
        name: str,
        endpoint: str,
        customer_ids: Iterable[int] | Mapping[int, int] = (),
        *,
        logged_in: bool = False,
        paused: bool = False,
        secret: str | None = None,
        contact: str | None = None,
    ) -> Agent:
        """Add an agent serving ``customer_ids`` (or a mapping customer id -> priority),
        with its phone's ``secret`` (None: the phone cannot register until one is set)."""
        priorities = (
            dict(customer_ids)
            if isinstance(customer_ids, Mapping)
            else dict.fromkeys(customer_ids, 0)
        )
        a = models.Agent
        async with self._unit() as s:
            if priorities:
                known = set(
                    await s.scalars(
                        select(models.Customer.id).where(models.Customer.id.in_(priorities))
                    )
                )
                missing = sorted(set(priorities) - known)
                if missing:
                    raise NotFound(f"agent {endpoint!r}: no customer with id {missing}")
            holder = (await s.execute(select(a.id, a.name).where(a.endpoint == endpoint))).first()
            if holder is not None:
                raise Conflict(
                    f"endpoint {endpoint!r} belongs to agent {holder.name!r} (id {holder.id})"
                )
            row = a(
                name=name,
                endpoint=endpoint,
                logged_in=logged_in,
                paused=paused,
                secret=secret,
                contact=contact,
            )
            s.add(row)
            await flush(s, f"agent {endpoint!r}")
            s.add_all(
                models.AgentCustomer(agent_id=row.id, customer_id=cid, priority=prio)
                for cid, prio in priorities.items()
            )
            await flush(s, f"customers of agent {endpoint!r}")
            return (await load_agents(s, [row.id]))[0]

    async def set_agent_secret(self, agent_id: int, secret: str) -> None:
        """Store the agent's phone secret (digest password)."""
        if not secret:
            raise ValueError("an agent's secret must not be empty")
        async with self._unit() as s:
            found = await s.scalar(
                update(models.Agent)
                .where(models.Agent.id == agent_id)
                .values(secret=secret)
                .returning(models.Agent.id)
                .execution_options(synchronize_session=False)
            )
            if found is None:
                raise NotFound(f"no agent with id {agent_id}")

    async def agent_credentials(self) -> tuple[AgentCredentials, ...]:
        """Every agent's endpoint, secret and static contact, in order of id."""
        a = models.Agent
        async with self._unit() as s:
            rows = await s.execute(select(a.id, a.endpoint, a.secret, a.contact).order_by(a.id))
            return tuple(AgentCredentials(*row) for row in rows)

    async def set_agent_state(
        self, agent_id: int, *, logged_in: bool | None = None, paused: bool | None = None
    ) -> None:
        """Store the agent's login and pause state (None: leave as it is)."""
        values = {
            key: value
            for key, value in (("logged_in", logged_in), ("paused", paused))
            if value is not None
        }
        async with self._unit() as s:
            if values:
                found = await s.scalar(
                    update(models.Agent)
                    .where(models.Agent.id == agent_id)
                    .values(**values)
                    .returning(models.Agent.id)
                    .execution_options(synchronize_session=False)
                )
            else:
                found = await s.scalar(select(models.Agent.id).where(models.Agent.id == agent_id))
            if found is None:
                raise NotFound(f"no agent with id {agent_id}")
