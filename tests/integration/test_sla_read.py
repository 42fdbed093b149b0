"""The SLA figures' own read of the call log (``CallRepository.ended_calls_between`` and
``domain.call_facts.facts_of``, a million rows a night) gives exactly the facts the call
log's read gives (``calls_between`` and ``CallLogEntry.facts``), on SQLite and PostgreSQL: the same
calls, instants aware in UTC to the microsecond, a message call's wait ending at message
capture (else at its end), a stray answer time of an abandoned call ignored.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from televikar_pbx.db.engine import make_engine, make_sessionmaker
from televikar_pbx.db.repositories import CallRepository, DirectoryRepository
from televikar_pbx.domain.call_facts import facts_of
from televikar_pbx.domain.sla import CallFacts
from tests.helpers import run_async
from tests.integration.test_calls_list import add_calls, at
from tests.integration.test_sla_cli import DAY_CALLS, FJORD, NORDLYS

MORE_CALLS: list[dict[str, Any]] = [
    {"customer": FJORD, "arrived": at("2026-11-28 12:00:00.000001"), "caller": "4790000011",
     "agent": 1, "answered": 12.000001, "ended": 13.5, "outcome": "answered"},
    {"customer": FJORD, "arrived": at("2026-11-28 12:10:00.5"), "caller": "4790000012",
     "ended": 3.25, "outcome": "no_message"},  # no journal event: the wait ends at the end
    {"customer": FJORD, "arrived": at("2026-11-28 12:20:00"), "caller": "4790000013",
     "queue_left": 0.000001, "ended": 2, "outcome": "no_message"},
    {"customer": FJORD, "arrived": at("2026-11-28 12:30:00"), "caller": "4790000014",
     "agent": 1, "answered": 4, "ended": 4.5, "outcome": "abandoned"},  # answered_at ignored
    {"customer": FJORD, "arrived": at("2026-11-28 12:40:00"), "caller": "4790000015",
     "ended": 5, "outcome": "rejected"},
    # The day before and the day after in Oslo: outside the range.
    {"customer": FJORD, "arrived": at("2026-11-27 22:59:59.999999"), "caller": "4790000016",
     "ended": 1, "outcome": "abandoned"},
    {"customer": FJORD, "arrived": at("2026-11-28 23:00:00"), "caller": "4790000017",
     "ended": 1, "outcome": "abandoned"},
]  # fmt: skip


async def _seed(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        async with make_sessionmaker(engine).begin() as session:
            directory = DirectoryRepository(session)
            fjord = await directory.add_customer("Fjordbakst AS", "Fjordbakst", ["4721000001"])
            nordlys = await directory.add_customer("Nordlys AS", "Nordlys", ["4721000002"])
            assert (fjord.id, nordlys.id) == (FJORD, NORDLYS)
            await directory.add_agent("Kari", "agent1", [FJORD, NORDLYS])
    finally:
        await engine.dispose()


def _both_reads(db_url: str, customer: int) -> tuple[list[CallFacts], list[CallFacts]]:
    oslo = dt.timezone(dt.timedelta(hours=1))  # November in Oslo
    start = dt.datetime(2026, 11, 28, tzinfo=oslo)
    end = start + dt.timedelta(days=1)

    async def read() -> tuple[list[CallFacts], list[CallFacts]]:
        engine = make_engine(db_url)
        try:
            async with make_sessionmaker(engine).begin() as session:
                calls = CallRepository(session)
                log = await calls.calls_between(customer, start, end)
                times = await calls.ended_calls_between(customer, start, end)
        finally:
            await engine.dispose()
        return [f for f in (e.facts() for e in log) if f is not None], list(map(facts_of, times))

    return run_async(read)


def test_the_sla_read_gives_the_facts_of_the_call_log(db_url: str) -> None:
    run_async(lambda: _seed(db_url))
    add_calls(db_url, [*DAY_CALLS, *MORE_CALLS])
    from_log, from_sla_read = _both_reads(db_url, FJORD)
    assert from_sla_read == from_log
    assert len(from_log) == 6 + 5  # DAY_CALLS' ended Fjordbakst calls, MORE_CALLS' in range
    for facts in from_sla_read:
        for instant in (facts.arrived_at, facts.answered_at, facts.ended_at, facts.overflowed_at):
            assert instant is None or instant.tzinfo is dt.UTC
    first = from_sla_read[6]
    assert first.arrived_at == at("2026-11-28 12:00:00.000001")
    assert first.wait == dt.timedelta(seconds=12, microseconds=1)
    no_journal, captured, stray = from_sla_read[7:10]
    assert no_journal.wait == dt.timedelta(seconds=3.25)
    assert captured.wait == dt.timedelta(microseconds=1)
    assert stray.answered_at is None
    nordlys = _both_reads(db_url, NORDLYS)
    assert nordlys[0] == nordlys[1] and len(nordlys[1]) == 1
