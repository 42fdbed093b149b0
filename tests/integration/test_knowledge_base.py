"""The knowledge base on a real migrated database (SQLite and PostgreSQL): Norwegian
search within the customers given, and versions."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from televikar_pbx.auth.passwords import TEST_PARAMS, Passwords
from televikar_pbx.db.knowledge_repo import KbPageNotFound, KnowledgeRepository, PageChanged
from televikar_pbx.db.repositories import DirectoryRepository, NotFound
from televikar_pbx.db.users_repo import UserRepository
from televikar_pbx.domain.auth import Role
from televikar_pbx.domain.knowledge import PageInvalid

Sessionmaker = async_sessionmaker[AsyncSession]
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
PASSWORD = "correct horse battery"


@dataclass
class World:
    sm: Sessionmaker
    kb: KnowledgeRepository
    fjord: int
    nordlys: int
    fjord_page: int  # "Bestillinger", by anne at T0
    nordlys_page: int  # "Bestilling av regnskapstime"


@pytest.fixture
async def world(sessionmaker: Sessionmaker) -> World:
    directory = DirectoryRepository(sessionmaker)
    fjord = await directory.add_customer("Fjordbakst AS", "Fjordbakst", ["4721000001"])
    nordlys = await directory.add_customer("Nordlys AS", "Nordlys", ["4721000002"])
    kari_agent = await directory.add_agent("Kari", "agent1", [fjord.id])
    hashed = Passwords(TEST_PARAMS).hash(PASSWORD)
    users = UserRepository(sessionmaker)
    await users.add_user("kari", hashed, Role.AGENT, agent_id=kari_agent.id, now=T0)
    anne = await users.add_user(
        "anne", hashed, Role.ACCOUNT_MANAGER, customer_ids=[fjord.id], now=T0
    )
    await users.add_user("sara", hashed, Role.SUPERVISOR, now=T0)
    kb = KnowledgeRepository(sessionmaker)
    fjord_page = await kb.create_page(
        fjord.id,
        "Bestillinger",
        "Vi tar imot bestillinger av brød og kaker til kl. 14 dagen før.\n\n"
        "Ring bakeren på [tel](tel:+4721000001).",
        user_id=anne.id,
        username="anne",
        now=T0,
    )
    nordlys_page = await kb.create_page(
        nordlys.id,
        "Bestilling av regnskapstime",
        "Timebestilling skjer på telefon. Hemmelig: kundens bestilling av revisjon.",
        user_id=None,
        username="admin",
        now=T0,
    )
    return World(sessionmaker, kb, fjord.id, nordlys.id, fjord_page.id, nordlys_page.id)


# --- the repository -----------------------------------------------------------------


async def test_search_finds_other_inflections_both_ways(world: World) -> None:
    kb = world.kb
    hits = await kb.search("bestilling", [world.fjord])
    assert [h.page.id for h in hits] == [world.fjord_page]  # the text says "bestillinger"
    assert hits[0].customer_name == "Fjordbakst"
    plural = await kb.search("bestillinger", [world.nordlys])
    assert [h.page.id for h in plural] == [world.nordlys_page]  # it says "bestilling"
    assert [h.page.id for h in await kb.search("Bestillingene KAKER", [world.fjord])] == [
        world.fjord_page
    ]
    # Every word must match; stop words are no words.
    assert await kb.search("bestilling sykkel", None) == ()
    assert await kb.search("og i", None) == ()


async def test_search_stays_within_the_customers_given(world: World) -> None:
    kb = world.kb
    both = await kb.search("bestilling", None)
    assert {h.page.id for h in both} == {world.fjord_page, world.nordlys_page}
    for customers in ([world.fjord], frozenset({world.fjord})):
        hits = await kb.search("bestilling", customers)
        assert world.nordlys_page not in {h.page.id for h in hits}
    assert await kb.search("hemmelig revisjon", [world.fjord]) == ()
    assert [h.page.id for h in await kb.search("hemmelig revisjon", None)] == [world.nordlys_page]
    assert await kb.search("bestilling", []) == ()


async def test_search_ranks_a_title_match_first(world: World) -> None:
    kb = world.kb
    other = await kb.create_page(
        world.fjord, "Levering", "Om bestilling: se egen side.", user_id=None, username="x", now=T0
    )
    hits = await kb.search("bestilling", [world.fjord])
    assert [h.page.id for h in hits] == [world.fjord_page, other.id]
    assert hits[0].rank > hits[1].rank


async def test_versions_record_who_when_what_and_search_follows(world: World) -> None:
    kb = world.kb
    later = T0 + 3 * DAY
    saved = await kb.save_page(
        world.fjord_page,
        "Levering",
        "Vi leverer brød til butikker.",
        base_version=1,
        user_id=None,
        username="sara",
        now=later,
    )
    assert (saved.version, saved.updated_by, saved.updated_at) == (2, "sara", later)
    assert (saved.last_reviewed_at, saved.last_reviewed_by) == (later, "sara")
    versions = await kb.versions(world.fjord_page)
    assert [(v.version, v.username, v.saved_at, v.title) for v in versions] == [
        (2, "sara", later, "Levering"),
        (1, "anne", T0, "Bestillinger"),
    ]
    assert versions[1].body.startswith("Vi tar imot bestillinger")
    # The index holds the new text only.
    assert await kb.search("bestilling", [world.fjord]) == ()
    assert [h.page.id for h in await kb.search("leveringer", [world.fjord])] == [world.fjord_page]
    # A save from an old version is refused, not silently overwritten.
    with pytest.raises(PageChanged):
        await kb.save_page(
            world.fjord_page, "X", "y", base_version=1, user_id=None, username="z", now=later
        )
    assert (await kb.get_page(world.fjord_page)).version == 2
    assert len(await kb.versions(world.fjord_page)) == 2


async def test_repository_refusals(world: World) -> None:
    kb = world.kb
    with pytest.raises(PageInvalid):
        await kb.create_page(world.fjord, " ", "x", user_id=None, username=None, now=T0)
    with pytest.raises(NotFound):
        await kb.create_page(999, "T", "x", user_id=None, username=None, now=T0)
    with pytest.raises(KbPageNotFound):
        await kb.get_page(999)
    with pytest.raises(KbPageNotFound):
        await kb.save_page(999, "T", "x", base_version=1, user_id=None, username=None, now=T0)
    reviewed = await kb.mark_reviewed(world.fjord_page, username="anne", now=T0 + DAY)
    assert (reviewed.last_reviewed_at, reviewed.version) == (T0 + DAY, 1)


async def test_search_structures_per_database(world: World) -> None:
    """SQLite: the FTS5 table holds stemmed text and loses a deleted page's row.
    PostgreSQL: the search can use the GIN index."""
    async with world.sm.begin() as s:
        dialect = s.get_bind().dialect.name
        if dialect == "sqlite":
            stored = await s.scalar(
                text("SELECT title FROM kb_search WHERE rowid = :id"), {"id": world.fjord_page}
            )
            assert stored == "bestilling"
            await s.execute(text("DELETE FROM kb_pages WHERE id = :id"), {"id": world.fjord_page})
            left = await s.scalar(text("SELECT count(*) FROM kb_search"))
            assert left == 1
        else:
            await s.execute(text("SET LOCAL enable_seqscan = off"))
            plan = "\n".join(
                await s.scalars(
                    text(
                        "EXPLAIN SELECT id FROM kb_pages WHERE to_tsvector('norwegian'::regconfig,"
                        " title || ' ' || body) @@ plainto_tsquery('norwegian', 'bestilling')"
                    )
                )
            )
            assert "ix_kb_pages_search" in plan, plan
