"""The replay's roster: how many agents work from which local time, for which customers.

A roster is CSV text with the header ``from,agents,customers`` (``customers`` optional):

    from,agents,customers
    08:00,3,
    10:00,2,
    10:00,1,Acme AS|Bakeriet
    16:00,0,
    16:00,0,Acme AS|Bakeriet

Each line starts a **pool** of agents serving the listed customers (``|`` between names;
empty: every customer) at a local wall-clock time of each replayed day, and keeps that
many until a later line for the same customers changes it (0 ends the pool). Before its
first line a pool has no agents. Agents log in and out through the desk's own events
(``AgentLoggedIn``/``AgentLoggedOut``): an agent on a call when its pool shrinks finishes
the call (and its wrap-up) first, as the desk's rules say.

:func:`parse_roster` reads the text (one ``ValueError`` naming the line for anything
wrong); :func:`roster_staff` turns it into the replay's :class:`Staff`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from televikar_pbx.domain.directory import Agent
from televikar_pbx.domain.staffing.replay import Shift, Staff

MAX_AGENTS = 10_000
_HEADER = ("from", "agents", "customers")


@dataclass(frozen=True, slots=True)
class RosterLine:
    """From ``start`` (local), ``agents`` agents serve ``customers`` (names; ``()``:
    every customer)."""

    start: time
    agents: int
    customers: tuple[str, ...] = ()


def parse_roster(text: str) -> tuple[RosterLine, ...]:
    """The roster's lines in time order; ValueError ``roster line N: ...`` if wrong."""
    rows = [
        (n, row)
        for n, row in enumerate(csv.reader(io.StringIO(text)), 1)
        if any(cell.strip() for cell in row)
    ]
    if not rows:
        raise ValueError("the roster is empty (header: from,agents,customers)")
    number, header = rows[0]
    names = tuple(cell.strip().casefold() for cell in header)
    if names not in (_HEADER[:2], _HEADER):
        raise ValueError(f"roster line {number}: the header must be from,agents[,customers]")
    lines: list[RosterLine] = []
    seen: set[tuple[time, tuple[str, ...]]] = set()
    for number, row in rows[1:]:
        if len(row) > len(names):
            raise ValueError(
                f"roster line {number}: {len(row)} fields, the header has {len(names)}"
            )
        cells = [cell.strip() for cell in row] + [""] * (len(names) - len(row))
        line = RosterLine(
            _start(number, cells[0]), _count(number, cells[1]), _customers(number, cells[2:])
        )
        key = (line.start, tuple(sorted(n.casefold() for n in line.customers)))
        if key in seen:
            raise ValueError(
                f"roster line {number}: a second line for {cells[0]} and these customers"
            )
        seen.add(key)
        lines.append(line)
    if not lines:
        raise ValueError("the roster has a header but no lines")
    return tuple(sorted(lines, key=lambda line: line.start))


def _start(number: int, text: str) -> time:
    try:
        hours, minutes = text.split(":")
        if len(minutes) != 2:
            raise ValueError
        return time(int(hours), int(minutes))
    except ValueError:
        raise ValueError(
            f"roster line {number}: 'from' must be a local time HH:MM, got {text!r}"
        ) from None


def _count(number: int, text: str) -> int:
    if not text.isdigit() or int(text) > MAX_AGENTS:
        raise ValueError(f"roster line {number}: 'agents' must be 0..{MAX_AGENTS}, got {text!r}")
    return int(text)


def _customers(number: int, cells: list[str]) -> tuple[str, ...]:
    if not cells or not cells[0]:
        return ()
    names = tuple(name.strip() for name in cells[0].split("|"))
    if any(not name for name in names):
        raise ValueError(f"roster line {number}: an empty customer name in {cells[0]!r}")
    return names


def roster_staff(
    lines: Iterable[RosterLine],
    customer_ids: Mapping[str, int],
    days: Iterable[date],
    timezone: str,
    *,
    first_id: int = 1,
) -> Staff:
    """The agents of ``lines`` and their shifts on each of ``days`` (local ``timezone``).
    ``customer_ids``: customer name (compared ignoring case) to id, the customers
    "every customer" means."""
    by_name = {name.casefold(): cid for name, cid in customer_ids.items()}
    everyone = frozenset(by_name.values())
    zone = ZoneInfo(timezone)
    pools: dict[frozenset[int], list[Agent]] = {}
    on_duty: dict[frozenset[int], int] = {}
    shifts: list[Shift] = []
    lines = sorted(lines, key=lambda line: line.start)
    for day in sorted(days):
        for line in lines:
            pool = _pool(line, by_name, everyone)
            agents = pools.setdefault(pool, [])
            while len(agents) < line.agents:
                n = first_id + sum(len(a) for a in pools.values())
                agents.append(Agent(n, f"replay-{n}", f"replay{n}", pool))
            at = _instant(day, line.start, zone)
            before = on_duty.get(pool, 0)
            for agent in agents[before : line.agents]:  # more: the next ones log in
                shifts.append(Shift(at, agent.id, True))
            for agent in agents[line.agents : before]:  # fewer: the last ones log out
                shifts.append(Shift(at, agent.id, False))
            on_duty[pool] = line.agents
    return Staff(tuple(a for pool in pools.values() for a in pool), tuple(shifts))


def _pool(line: RosterLine, by_name: Mapping[str, int], everyone: frozenset[int]) -> frozenset[int]:
    if not line.customers:
        return everyone
    unknown = [name for name in line.customers if name.casefold() not in by_name]
    if unknown:
        raise ValueError(f"roster: no customer {unknown[0]!r}")
    return frozenset(by_name[name.casefold()] for name in line.customers)


def _instant(day: date, start: time, zone: ZoneInfo) -> datetime:
    # A wall time in the spring gap reads with the offset before it (02:30 is 03:30).
    return datetime.combine(day, start, tzinfo=zone)
