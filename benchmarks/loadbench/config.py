"""The load benchmark's knobs: its command line, and the two presets of the steps.

``make bench`` runs the full ladder (FULL); ``make bench BENCH_ARGS=--quick`` a short one
for developers at work (QUICK: our desk and Queue() only, short steps, no repeated
steps, no probes, no waiting run), to read the main ratios in under 3 minutes. An
option given on the command line wins over the preset either way (``--quick --rates
10,20``).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

SYSTEMS = ("ours", "queue", "bare")

# What the presets set; None in the parser means "not given: take the preset's".
FULL: dict[str, Any] = {
    "systems": "ours,queue,bare",
    "rates": "10,20,30,40,60,80,100,120,140,160,180,200",
    "step_s": 20.0,
    "probes": True,
    "waiting": 1000,
    "profile_rate": 10.0,
    "eighty": True,
    "repeat": True,
}
QUICK: dict[str, Any] = {
    "systems": "ours,queue",
    "rates": "10,20,40,80,120,160,200",
    "step_s": 6.0,
    "probes": False,
    "waiting": 0,
    "profile_rate": 10.0,
    "eighty": True,
    # An overloaded step takes longest (callers wait seconds) and would take as long
    # again: the quick mode gives direction, the full run the figures.
    "repeat": False,
}


@dataclass(frozen=True)
class Config:
    agents: int
    customers: int
    answer_ms: int
    talk_ms: int
    rates: tuple[float, ...]
    step_s: float
    limit_ms: float
    ring_timeout_s: int
    answer_timeout_ms: int
    systems: tuple[str, ...]
    probes: bool
    probe_rate: float
    probe_s: float
    waiting: int
    waiting_rate: float
    log_level: str
    profile_rate: float | None
    message_burst: int = 0
    burst_rate: float = 10.0
    screen_pop: int = 0
    pop_rate: float = 2.0
    pop_pages: tuple[int, ...] = (1, 10, 100)
    pop_answer_ms: int = 100
    pop_talk_ms: int = 200
    desk_pages: int = 0
    pages_rate: float = 16.0
    profile_pages: bool = False
    burst_rounds: int = 3
    pages_rounds: int = 6
    uas: int = 2  # sipp UAS processes sharing the agents
    quick: bool = False
    # The message-burst, screen-pop and desk-pages phases keep the workload they were
    # measured with (50 agents), whatever --agents the steps use.
    phase_agents: int = 50
    eighty: bool = True  # a step of ours at 80 % of its sustained rate, if the ladder has none
    repeat: bool = True  # a step that fails on latency alone is run once more
    # Settings given to our service (TELEVIKAR_<KEY>=<value>), to measure a lever off/on.
    service_settings: tuple[tuple[str, str], ...] = ()


def build_parser(description: str, results: Path) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"the short preset: systems {QUICK['systems']}, rates "
        f"{QUICK['rates']}, steps of {QUICK['step_s']:g} s, no repeats, no probes, no "
        "waiting run (under 3 min); options given as well win",
    )
    p.add_argument(
        "--agents",
        type=int,
        default=300,
        help="agents: endpoints, queue members, our desk's (default 300)",
    )
    p.add_argument(
        "--uas", type=int, default=2, help="sipp UAS processes answering for the agents (default 2)"
    )
    p.add_argument(
        "--phase-agents",
        type=int,
        default=50,
        help="agents of the burst, screen-pop, desk-pages phases (default 50)",
    )
    p.add_argument("--customers", type=int, default=5)
    p.add_argument("--answer-ms", type=int, default=200, help="agents' fixed answer delay")
    p.add_argument("--talk-ms", type=int, default=1000, help="call length after the answer")
    p.add_argument(
        "--rates", default=None, help=f"offered calls/s, one step each (default {FULL['rates']})"
    )
    p.add_argument(
        "--step-s",
        type=float,
        default=None,
        help=f"length of each step (default {FULL['step_s']:g})",
    )
    p.add_argument("--limit-ms", type=float, default=100.0, help="p99 routing latency bound")
    p.add_argument("--ring-timeout-s", type=int, default=15)
    p.add_argument(
        "--answer-timeout-ms",
        type=int,
        default=10_000,
        help="a caller not answered by then fails (sipp CANCELs)",
    )
    p.add_argument("--systems", default=None, help=f"default {FULL['systems']}")
    p.add_argument("--no-probes", dest="probes", action="store_false", default=None)
    p.add_argument("--probe-rate", type=float, default=10.0)
    p.add_argument("--probe-s", type=float, default=12.0)
    p.add_argument(
        "--waiting",
        type=int,
        default=None,
        help=f"callers waiting at once (default {FULL['waiting']}; 0: none)",
    )
    p.add_argument("--waiting-rate", type=float, default=20.0)
    p.add_argument("--log-level", default="warning", help="our service's log level")
    p.add_argument(
        "--service-setting",
        dest="service_settings",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a setting of our service, as TELEVIKAR_KEY=VALUE (repeatable), e.g. "
        "calls_write_behind=false or event_loop=asyncio to measure a lever off",
    )
    p.add_argument(
        "--profile-rate",
        type=float,
        default=None,
        help="record our service with py-spy (a dev dependency) during its step "
        f"at this rate (default {FULL['profile_rate']:g}); 0: never",
    )
    p.add_argument(
        "--no-eighty",
        dest="eighty",
        action="store_false",
        default=None,
        help="no extra step of ours at 80 %% of its sustained rate",
    )
    p.add_argument(
        "--no-repeat",
        dest="repeat",
        action="store_false",
        default=None,
        help="do not repeat a step that failed on latency alone (the --quick default)",
    )
    p.add_argument(
        "--with-message-burst",
        dest="message_burst",
        type=int,
        nargs="?",
        const=1000,
        default=0,
        metavar="N",
        help="after the steps, --burst-rounds rounds of one step of our service quiet "
        "and one while its worker delivers N messages (default 1000) to a local SMTP server",
    )
    p.add_argument(
        "--burst-rounds", type=int, default=3, help="quiet/burst pairs of steps, pooled (default 3)"
    )
    p.add_argument(
        "--burst-rate",
        type=float,
        default=10.0,
        help="calls/s of the two --with-message-burst steps",
    )
    p.add_argument(
        "--with-screen-pop",
        dest="screen_pop",
        type=int,
        nargs="?",
        const=200,
        default=0,
        metavar="CALLS",
        help="after the steps, screen-pop latency (agent phone's INVITE -> the card on "
        "the desk's pages) with --pop-pages pages, CALLS calls each (default 200)",
    )
    p.add_argument(
        "--pop-rate",
        type=float,
        default=2.0,
        help="calls/s of the screen-pop steps (one agent takes them all)",
    )
    p.add_argument("--pop-pages", default="1,10,100", help="pages of each screen-pop step")
    p.add_argument("--pop-answer-ms", type=int, default=100)
    p.add_argument("--pop-talk-ms", type=int, default=200)
    p.add_argument(
        "--with-desk-pages",
        dest="desk_pages",
        type=int,
        nargs="?",
        const=100,
        default=0,
        metavar="N",
        help="after the steps, --pages-rounds rounds of one step of our service with no "
        "desk page connected and one with N pages (default 100) on its agents' /events feeds",
    )
    p.add_argument(
        "--pages-rounds",
        type=int,
        default=6,
        help="without/with pairs of steps, pooled (default 6)",
    )
    p.add_argument(
        "--pages-rate",
        type=float,
        default=16.0,
        help="calls/s of the desk-pages steps (80 %% of sustained 20)",
    )
    p.add_argument(
        "--profile-pages", action="store_true", help="py-spy on our service in the desk-pages steps"
    )
    p.add_argument("--results", type=Path, default=results)
    return p


def parse_args(argv: list[str] | None, description: str, results: Path) -> tuple[Config, Path]:
    p = build_parser(description, results)
    a = p.parse_args(argv)
    preset = QUICK if a.quick else FULL
    for key, value in preset.items():
        if getattr(a, key) is None:
            setattr(a, key, value)
    systems = tuple(s for s in a.systems.split(",") if s)
    unknown = set(systems) - set(SYSTEMS)
    if unknown:
        p.error(f"unknown systems {sorted(unknown)}; choose from {SYSTEMS}")
    if a.agents < 1 or a.uas < 1 or a.phase_agents < 1:
        p.error("--agents, --uas and --phase-agents must be at least 1")
    settings = []
    for item in a.service_settings:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            p.error(f"--service-setting wants KEY=VALUE, got {item!r}")
        settings.append((f"TELEVIKAR_{key.strip().upper()}", value))
    given = vars(a) | {
        "systems": systems,
        "rates": tuple(sorted(float(r) for r in a.rates.split(",") if r)),
        "pop_pages": tuple(int(n) for n in a.pop_pages.split(",") if n),
        "burst_rounds": max(1, a.burst_rounds),
        "pages_rounds": max(1, a.pages_rounds),
        "service_settings": tuple(settings),
    }
    config = Config(**{f.name: given[f.name] for f in fields(Config)})
    return config, a.results
