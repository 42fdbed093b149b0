"""Demo data for a fresh installation and for trying calls in the lab."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from televikar_pbx.db.repositories import Conflict, DirectoryRepository
from televikar_pbx.domain.calendar import Agreement

# Open-ended, and no weekly hours: always open, so the lab answers at any hour.
DEMO_AGREEMENT = Agreement(dt.date(2026, 1, 1))


async def load_demo(sessionmaker: async_sessionmaker[AsyncSession]) -> bool:
    """Add two customers and three agents, logged in. Returns False, adding nothing, if the
    database already has any customer (so it is safe to run on every start)."""
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
    except Conflict:
        # Another process may have added customers between our check and our insert;
        # any other conflict (say, an agent already on endpoint agent1) is an error.
        async with sessionmaker() as session:
            if await DirectoryRepository(session).has_customers():
                return False
        raise
    return True
