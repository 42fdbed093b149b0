"""The benchmark of ``sla nightly`` (benchmarks/sla_job.py) on a small day, so that it
cannot rot: its generator, its bulk load (executemany on SQLite, COPY on PostgreSQL) and
the real job, run in this process, on a fresh database of each backend. The stored
figures must be the mix the generator made. Timings are never asserted.
"""

from __future__ import annotations

from typing import Any

from benchmarks.sla_job import DAY, MIX, bench
from televikar_pbx.db.engine import make_engine, make_sessionmaker
from televikar_pbx.db.repositories import SlaRepository
from tests.helpers import run_async

CALLS, CUSTOMERS = 2_000, 3


def stored_days(db_url: str) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        engine = make_engine(db_url)
        try:
            repo = SlaRepository(make_sessionmaker(engine))
            return [
                record.figures
                for customer in range(1, CUSTOMERS + 1)
                for record in await repo.aggregates(customer, "day", DAY, DAY)
            ]
        finally:
            await engine.dispose()

    return run_async(read)


def test_the_benchmark_stores_the_figures_of_the_calls_it_made(empty_db_url: str) -> None:
    result = bench(empty_db_url, CALLS, CUSTOMERS, fresh=False)
    assert result.problems == []  # each customer's day, figure by figure
    made = result.outcomes
    assert sum(made.values()) == CALLS
    assert set(made) == {outcome for outcome, _ in MIX}

    days = stored_days(empty_db_url)
    assert len(days) == CUSTOMERS

    def total(figure: str) -> int:
        return sum(day[figure] for day in days)

    assert total("offered") == CALLS - made["rejected"] - made["unknown_number"]
    assert total("answered") == made["answered"]
    assert total("short_abandons") + total("lost") == made["abandoned"]
    assert total("messages") == made["message"] + made["no_message"]
    assert result.job.seconds > 0 and result.job.peak_rss > 0
