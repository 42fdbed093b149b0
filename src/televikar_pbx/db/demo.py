"""Demo data for a fresh installation and for trying calls in the lab."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from televikar_pbx.db.knowledge_repo import KnowledgeRepository
from televikar_pbx.db.repositories import Conflict, DirectoryRepository
from televikar_pbx.db.users_repo import UserRepository
from televikar_pbx.domain.auth import Role
from televikar_pbx.domain.calendar import Agreement

# Open-ended, and no weekly hours: always open, so the lab answers at any hour.
DEMO_AGREEMENT = Agreement(dt.date(2026, 1, 1))


# The demo agents' desk users (username, agent endpoint); their passwords are made
# and printed once by ``demo load`` (cli.py), never stored anywhere but as a hash.
DEMO_USERS = (("kari", "agent1"), ("ola", "agent2"), ("nora", "agent3"))

# Knowledge-base pages per demo customer (customer name, title, Markdown, days since
# the last review: one is past the 90 days, to show the flag).
DEMO_PAGES = (
    (
        "Fjordbakst AS",
        "Bestillinger",
        "Fjordbakst tar imot **bestillinger** på brød og kaker til kl. 14 dagen før.\n\n"
        "- Noter navn, telefonnummer og hva som skal hentes.\n"
        "- Bryllupskaker: be kunden ringe bakeren direkte på [22 00 00 01](tel:+4722000001).\n"
        "- Allergier: skriv dem alltid i meldingen.\n",
        0,
    ),
    (
        "Fjordbakst AS",
        "Åpningstider",
        "Butikken er åpen **07.00 til 17.00** på hverdager og **08.00 til 14.00** på lørdag.\n\n"
        "Mer på [fjordbakst.no](https://fjordbakst.no).\n",
        120,
    ),
    (
        "Nordlys Regnskap AS",
        "Timebestilling",
        "Kunder som vil ha møte med en regnskapsfører: ta navn, firma og ønsket dag, og "
        "send det som **melding**. Vi lover aldri et klokkeslett.\n\n"
        "Hastesaker (frister hos Skatteetaten samme dag) merkes som **haster**.\n",
        10,
    ),
)


async def load_demo(
    sessionmaker: async_sessionmaker[AsyncSession],
    password_hash: Callable[[str], str] | None = None,
    now: dt.datetime | None = None,
) -> bool:
    """Add two customers and three agents, logged in; with ``now`` knowledge-base pages
    (``DEMO_PAGES``), and with ``password_hash`` (the hash of each demo user's password,
    by username) a desk user per agent. Returns
    False, adding nothing, if the database already has any customer (so it is safe to
    run on every start)."""
    try:
        async with sessionmaker.begin() as session:
            repo = DirectoryRepository(session)
            if await repo.has_customers():
                return False
            fjordbakst = await repo.add_customer(
                "Fjordbakst AS", "Fjordbakst", ["4721000001"], agreement=DEMO_AGREEMENT
            )
            nordlys = await repo.add_customer(
                "Nordlys Regnskap AS",
                "Nordlys Regnskap",
                ["4721000002"],
                agreement=DEMO_AGREEMENT,
            )
            await repo.add_agent("Kari", "agent1", [fjordbakst.id], logged_in=True)
            await repo.add_agent("Ola", "agent2", [fjordbakst.id, nordlys.id], logged_in=True)
            await repo.add_agent("Nora", "agent3", [nordlys.id], logged_in=True)
            if now is not None:
                pages = KnowledgeRepository(session)
                ids = {"Fjordbakst AS": fjordbakst.id, "Nordlys Regnskap AS": nordlys.id}
                for customer, title, body, age_days in DEMO_PAGES:
                    await pages.create_page(
                        ids[customer],
                        title,
                        body,
                        user_id=None,
                        username="demo",
                        now=now - dt.timedelta(days=age_days),
                    )
            if password_hash is not None:
                if now is None:
                    raise ValueError("demo users need the time they are made (now)")
                users = UserRepository(session)
                for username, endpoint in DEMO_USERS:
                    agent = await repo.find_agent(endpoint)
                    await users.add_user(
                        username,
                        password_hash(username),
                        Role.AGENT,
                        agent_id=agent.id,
                        now=now,
                    )
    except Conflict:
        # Another process may have added customers between our check and our insert;
        # any other conflict (say, an agent already on endpoint agent1) is an error.
        async with sessionmaker() as session:
            if await DirectoryRepository(session).has_customers():
                return False
        raise
    return True
