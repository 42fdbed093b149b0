"""Load benchmark: our ACD against Asterisk's own Queue() and a bare Answer(), on the
same machine, in one run (issues 7 and 15). Figures and how to read them:
docs/performance.md.

    make bench                                    # what the docs' numbers come from
    make bench BENCH_ARGS=--quick                 # the main ratios in under 3 minutes
    .venv/bin/python benchmarks/load.py --help    # the knobs

It starts its own Asterisk from the lab's root beside the lab's (other ports, its own
configuration and state: benchmarks/loadbench/asterisk.py), sipp UAS processes sharing
the agents (--uas), and a sipp carrier per step. For each offered rate (steps, lowest
first) each system takes one step: (a) ``televikar-pbx serve`` on a fresh SQLite
database, (b) Queue() with the same agents, ring timeout, leastrecent, no wrap-up,
autofill, (c) Answer()/Wait()/Hangup() as the ceiling. A failed step is repeated
once if only the latency bound was broken or other work took a quarter of a core
(stats.should_repeat); a system stops climbing after a failed step; then one more step
of ours at 80 % of its sustained rate, if the ladder had none. Then: probes of
Queue()'s "10 calls/s" pathology (benchmarks/loadbench/probes.py), and how many callers
can wait at once in our queues (waiting.py). Ours against Queue() and issue 15's goals:
benchmarks/loadbench/goals.py. Results: benchmarks/results/<UTC time>.json and .md.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(REPO))

from benchmarks.loadbench import procs, profile, report, sipp  # noqa: E402
from benchmarks.loadbench.asterisk import BENCH_DIR, BenchAsterisk, Layout, did  # noqa: E402
from benchmarks.loadbench.burst import run_burst_phase  # noqa: E402
from benchmarks.loadbench.config import Config, parse_args  # noqa: E402
from benchmarks.loadbench.desk_pages import run_desk_pages_phase, run_screen_pop_phase  # noqa: E402
from benchmarks.loadbench.goals import evaluate  # noqa: E402
from benchmarks.loadbench.probes import run_probes  # noqa: E402
from benchmarks.loadbench.service import Seed, Service  # noqa: E402
from benchmarks.loadbench.stats import (  # noqa: E402
    StepFigures,
    Summary,
    agent_offers,
    answer_latencies_ms,
    busy_cores,
    carrier_calls,
    gate_problems,
    queue_log_events,
    routing_latencies_ms,
    should_repeat,
    sustained_rate,
)
from benchmarks.loadbench.waiting import run_waiting  # noqa: E402

ARI_APP = "televikar-bench"
# The sanity gate (issue 7): at the lowest rate every system connects its callers within
# this many ms of the agents' answer delay on average, or the run is invalid.
GATE_MS = 100.0
TARGET = "127.0.0.1:5160"


class Bench:
    """One run: the Asterisk, our service, the agents' UAS, and the steps so far."""

    def __init__(self, config: Config, workdir: Path) -> None:
        self.config = config
        self.workdir = workdir
        self.asterisk = BenchAsterisk(
            Layout(config.customers, config.agents, ARI_APP, config.ring_timeout_s,
                   bare_wait_s=config.talk_ms // 1000 + 30, uas=config.uas)
        )  # fmt: skip
        self.service: Service | None = None
        self.agents: sipp.Agents | None = None
        self.steps: list[StepFigures] = []
        self.notes: list[str] = []
        self.profile: dict[str, Any] | None = None
        self.idle: dict[str, float] = {}
        self.stopped: dict[str, str] = {}  # why each system stopped climbing
        self._step_no = 0

    # --- parts -------------------------------------------------------------------------

    def start_agents(self, name: str, answer_ms: int, builtin: bool = False) -> sipp.Agents:
        self.stop_agents()
        self.agents = sipp.start_agents(
            self.workdir, name, answer_ms, TARGET, builtin=builtin, count=self.config.uas
        )
        return self.agents

    def stop_agents(self) -> None:
        if self.agents is not None:
            self.agents.stop()
            self.agents = None

    def start_service(
        self, name: str, seed: Seed, ring_timeout_s: int, env: dict[str, str] | None = None
    ) -> Service:
        self.stop_service()
        self.service = Service(
            self.asterisk, self.workdir, name, seed, ari_app=ARI_APP,
            ring_timeout_s=ring_timeout_s, log_level=self.config.log_level,
        )  # fmt: skip
        self.service.env.update(dict(self.config.service_settings))
        self.service.env.update(env or {})
        self.service.start()
        return self.service

    def stop_service(self) -> None:
        if self.service is not None:
            self.service.stop()
            self.service = None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stop_agents()
        with contextlib.suppress(Exception):
            self.stop_service()
        self.asterisk.stop()

    def dids_file(self, system: str, customers: int | None = None) -> Path:
        """The numbers of ``system``'s first ``customers`` customers (default: all)."""
        count = customers or self.config.customers
        path = self.workdir / f"dids_{system}_{count}.csv"
        if not path.exists():
            sipp.write_dids(path, [did(system, c) for c in range(1, count + 1)])
        return path

    def next_prefix(self) -> str:
        """Caller numbers of the next carrier run: 479 + run number + call number."""
        self._step_no += 1
        return f"479{self._step_no:02d}"

    def clean_up_channels(self, what: str) -> None:
        """Leave no channel behind for the next step; note it if there were some."""
        deadline = time.monotonic() + 3
        while self.asterisk.channel_count() and time.monotonic() < deadline:
            time.sleep(0.2)
        left = self.asterisk.hang_up_everything()
        if left:
            self.notes.append(f"{what}: {left} channels were still up afterwards, hung up")
            time.sleep(1.0)

    def wait_quiet(self, pid: int, what: str, limit_s: float = 15.0) -> None:
        """Let a process (our service: its call records; Asterisk after an overload)
        finish what it still has to do before the next step, so that its work does not
        land in another step's figures."""
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            before = procs.cpu_seconds(pid)
            time.sleep(0.5)
            if procs.cpu_seconds(pid) - before < 0.05:  # under 10 % of a core
                return
        self.notes.append(f"{what}: still busy {limit_s:.0f} s after the step")

    # --- profile (py-spy, optional) ------------------------------------------------------

    def start_profile(self, name: str) -> tuple[subprocess.Popen[bytes], Path] | None:
        binary = profile.py_spy()
        if binary is None or self.service is None:
            self.notes.append("no profile: py-spy is not installed (a dev dependency: make venv)")
            return None
        out = self.workdir / f"profile_{name}.txt"
        proc = procs.start(
            [binary, "record", "--pid", str(self.service.pid), "--nonblocking", "--gil",
             "--full-filenames",
             "--format", "raw", "--rate", "200", "--duration", f"{self.config.step_s:.0f}",
             "--output", str(out)],
            self.workdir / f"profile_{name}.log",
        )  # fmt: skip
        return proc, out

    def finish_profile(self, spy: tuple[subprocess.Popen[bytes], Path], rate: float) -> None:
        proc, out = spy
        try:
            proc.wait(30)
            procs.forget(proc)
        except subprocess.TimeoutExpired:
            procs.stop(proc)
        if out.is_file():
            self.profile = {"rate": rate, "file": str(out), **profile.summarize(out.read_text())}
        else:
            self.notes.append(f"py-spy wrote no profile (see {out.with_suffix('.log')})")

    # --- one step ----------------------------------------------------------------------

    def run_calls(
        self,
        system: str,
        rate: float,
        seconds: float,
        name: str,
        customers: int | None = None,
        talk_ms: int | None = None,
    ) -> dict[str, Any]:
        """Place calls at ``rate`` for ``seconds`` to ``system`` (its first ``customers``
        customers in turn, default all; calls of ``talk_ms``, default the config's);
        wait for all of them; what they measured, with the CPU used meanwhile."""
        cfg = self.config
        talk_ms = cfg.talk_ms if talk_ms is None else talk_ms
        assert self.agents is not None
        calls = max(1, round(rate * seconds))
        ours = self.service.pid if system == "ours" and self.service else None
        offset = self.agents.log_offset()
        before = self._sample(ours)
        carrier = sipp.start_carrier(
            self.workdir, name, target=TARGET, dids_file=self.dids_file(system, customers),
            prefix=self.next_prefix(), rate=rate, calls=calls,
            variables={"talk_ms": str(talk_ms)}, answer_timeout_ms=cfg.answer_timeout_ms,
        )  # fmt: skip
        limit = seconds + (cfg.answer_timeout_ms + talk_ms) / 1000 + 30
        code = carrier.wait(limit)
        # While the calls ran (the carrier's run): how busy the machine and each sipp was.
        during = self._sample(ours)
        time.sleep(1.0)  # the agents' legs end (BYE) after the caller's
        if ours:  # its CPU includes the records it writes after the calls ended
            self.wait_quiet(ours, name)
        after = self._sample(ours)
        messages = carrier.messages()
        placed_calls = carrier_calls(messages)
        offers = agent_offers(self.agents.messages_since(offset))
        totals = carrier.totals()
        placed = totals.get("OutgoingCall(C)", len(placed_calls))
        failed = totals.get("FailedCall(C)", 0)
        if code not in (0, 1):
            self.notes.append(f"{name}: sipp exited with {code} (killed after {limit:.0f} s?)")
            failed = max(failed, placed - sum(1 for c in placed_calls if c.answered_at))
        cores = os.cpu_count() or 1
        m0, m1, m2 = before["machine"], during["machine"], after["machine"]
        ran = max(1e-3, m1.at - m0.at)
        used = {k: after[k] - before[k] for k in ("asterisk", "ours", "sipp", "self")}
        whole_busy_s = busy_cores(m0.idle_s, m2.idle_s, m2.at - m0.at, cores) * (m2.at - m0.at)
        uas = [b - a for a, b in zip(before["uas"], during["uas"], strict=True)]
        return {
            "calls": placed_calls,
            "offers": offers,
            "placed": placed,
            "failed": failed,
            "routing": Summary.of(routing_latencies_ms(placed_calls, offers)),
            "answer": Summary.of(answer_latencies_ms(placed_calls)),
            "asterisk_cpu_s": used["asterisk"],
            "ours_cpu_s": used["ours"] if ours else None,
            "sipp_cpu_s": used["sipp"],
            "harness_cpu_s": used["self"],  # this process (with the desk-pages client thread)
            "other_load_cores": max(0.0, whole_busy_s - sum(used.values())) / (m2.at - m0.at),
            "machine_busy_cores": busy_cores(m0.idle_s, m1.idle_s, ran, cores),
            "asterisk_cores": (during["asterisk"] - before["asterisk"]) / ran,
            "ours_cores": (during["ours"] - before["ours"]) / ran if ours else None,
            "uas_max_core_pct": 100 * max(uas, default=0.0) / ran,
            "carrier_core_pct": 100 * (during["carrier"] - before["carrier"]) / ran,
            "started": before["time"],
        }

    def _sample(self, ours: int | None) -> dict[str, Any]:
        """CPU seconds used so far by each process of a step, the machine, the time. The
        carrier's CPU is known once it has been waited for (this process's children)."""
        assert self.agents is not None
        uas = self.agents.cpu_seconds()
        carrier = procs.children_cpu_seconds()
        return {
            "asterisk": procs.cpu_seconds(self.asterisk.pid),
            "ours": procs.cpu_seconds(ours) if ours else 0.0,
            "uas": uas,
            "carrier": carrier,
            "sipp": sum(uas) + carrier,
            "self": procs.self_cpu_seconds(),
            "machine": procs.machine_sample(),
            "time": time.time(),
        }

    def step(self, system: str, rate: float, attempt: int = 1, eighty: bool = False) -> StepFigures:
        name = f"{system}_{rate:g}" + (f"_{attempt}" if attempt > 1 else "")
        name += "_eighty" if eighty else ""
        spy = None
        if system == "ours" and rate == self.config.profile_rate and self.service:
            spy = self.start_profile(name)
        got = self.run_calls(system, rate, self.config.step_s, name)
        if spy is not None:
            self.finish_profile(spy, rate)
        placed = max(1, got["placed"])
        ours = self.service.pid if system == "ours" and self.service else None
        figures = StepFigures(
            system=system,
            rate=rate,
            placed=got["placed"],
            failed=got["failed"],
            routing=got["routing"] if system != "bare" else Summary.of([]),
            answer=got["answer"],
            asterisk_cpu_ms_per_call=got["asterisk_cpu_s"] * 1000 / placed,
            ours_cpu_ms_per_call=(
                got["ours_cpu_s"] * 1000 / placed if got["ours_cpu_s"] is not None else None
            ),
            ours_rss_kb=procs.rss_kb(ours) if ours else None,
            other_load_cores=got["other_load_cores"],
            machine_busy_cores=got["machine_busy_cores"],
            asterisk_cores=got["asterisk_cores"],
            ours_cores=got["ours_cores"],
            uas_max_core_pct=got["uas_max_core_pct"],
            carrier_core_pct=got["carrier_core_pct"],
            eighty=eighty,
        )
        figures.channels_left = self.asterisk.channel_count()
        if system.startswith("queue"):
            events = queue_log_events(self.asterisk.queue_log(), since=got["started"])
            figures.queue_log = dict(events)
        self.clean_up_channels(name)
        self.steps.append(figures)
        return figures


def print_step(s: StepFigures) -> None:
    r, a = s.routing, s.answer
    ours = f" ours {s.ours_cpu_ms_per_call:.1f} ms/call" if s.ours_cpu_ms_per_call else ""
    print(
        f"  {s.system:5} {s.rate:5g}/s: {s.placed} placed, {s.failed} failed, routing "
        f"p50 {r.p50:.1f} p99 {r.p99:.1f} ms, INVITE->200 p50 {a.p50:.0f} p99 {a.p99:.0f} ms, "
        f"Asterisk {s.asterisk_cpu_ms_per_call:.1f} ms/call{ours}; machine "
        f"{s.machine_busy_cores or 0:.2f} cores busy (Asterisk {s.asterisk_cores or 0:.2f}), "
        f"busiest UAS {s.uas_max_core_pct or 0:.0f} %, carrier {s.carrier_core_pct or 0:.0f} % "
        f"of a core; other load {s.other_load_cores:.2f} cores",
        flush=True,
    )


def run_steps(bench: Bench) -> None:
    cfg = bench.config
    bench.start_agents("agents", cfg.answer_ms)
    if "ours" in cfg.systems:
        bench.start_service("ours", Seed(cfg.customers, cfg.agents), cfg.ring_timeout_s)
    # CPU at rest, part of every step's CPU per call (most visible at the lowest rate).
    pids = {"asterisk": bench.asterisk.pid}
    if bench.service:
        pids["ours"] = bench.service.pid
    before = {k: procs.cpu_seconds(p) for k, p in pids.items()}
    time.sleep(3.0)
    bench.idle = {f"{k}_pct": round((procs.cpu_seconds(p) - before[k]) / 3.0 * 100, 1)
                  for k, p in pids.items()}  # fmt: skip
    climbing = list(cfg.systems)
    # Above this rate the agents themselves are nearly all busy (each call holds one for
    # the answer delay, the call and ~50 ms of signalling): a system with agents would
    # queue callers for want of agents, not for its own sake, so it stops there.
    agent_bound = 0.9 * cfg.agents / ((cfg.answer_ms + cfg.talk_ms + 50) / 1000)
    for rate in cfg.rates:
        for system in list(climbing):
            if system != "bare" and rate > agent_bound:
                bench.stopped[system] = (
                    f"not run above {agent_bound:.0f} calls/s: more than 90 % of the "
                    f"{cfg.agents} agents would be busy"
                )
                climbing.remove(system)
                continue
            figures = bench.step(system, rate)
            print_step(figures)
            if system == "ours" and rate == cfg.profile_rate and bench.profile:
                figures.profiled = True
            if cfg.repeat and should_repeat(figures, cfg.limit_ms):
                # Once, and the repeat counts (both are reported).
                figures.superseded = True
                figures = bench.step(system, rate, attempt=2)
                print_step(figures)
            if not figures.passed(cfg.limit_ms):
                bench.stopped[system] = f"failed at {rate:g} calls/s"
                climbing.remove(system)
            if system == "ours" and system not in climbing:
                run_eighty_step(bench)
        if not climbing:
            break
    for system in climbing:
        bench.stopped[system] = "passed every step"
        if system == "ours":
            run_eighty_step(bench)
    bench.stop_service()


def run_eighty_step(bench: Bench) -> None:
    """Issue 15's latency goal is measured at 80 % of our sustained rate: if the ladder
    had no step there, one more step of ours at that rate (rounded down), on a fresh
    service (the ladder's last step may have left it behind with work), as soon as our
    climb has ended, close in time to the ladder's steps of ours (the machine's speed
    drifts). In the first full run it came last, after Queue() and the bare ceiling had
    climbed to 200 calls/s: at 32 calls/s it cost our service 26 and Asterisk 22 ms per
    call, against 20-23 and 14-16 at 30 and 40 on the ladder, with p99 315 ms (cause not
    established; benchmarks/results/2026-12-06T041225Z.md)."""
    cfg = bench.config
    ours = sustained_rate([s for s in bench.steps if s.system == "ours"], cfg.limit_ms)
    if not ours or not cfg.eighty:
        return
    rate = float(math.floor(0.8 * ours))
    if rate < 1 or any(s.system == "ours" and s.rate == rate for s in bench.steps):
        return
    # After a failed step Asterisk may still be working off the overload (125013Z: the
    # 80 % step right after two failed steps had 1.73 cores busy where the ladder's
    # higher step had 1.49): let it finish first, as each step lets our service finish.
    bench.wait_quiet(bench.asterisk.pid, "Asterisk before the 80 % step", limit_s=30.0)
    bench.start_service("ours_eighty", Seed(cfg.customers, cfg.agents), cfg.ring_timeout_s)
    figures = bench.step("ours", rate, attempt=1, eighty=True)
    print_step(figures)


def versions(bench: Bench) -> dict[str, Any]:
    def run(*args: str) -> str:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(args, capture_output=True, text=True, timeout=10, cwd=REPO)
            return (out.stdout or out.stderr).strip()
        return "?"

    sipp_version = run("sipp", "-v").split("SIPp", 1)[-1].split()[0:1]
    commit = run("git", "rev-parse", "--short", "HEAD")
    dirty = run("git", "status", "--porcelain", "--untracked-files=no")
    return {
        "machine": procs.describe_machine(),
        "asterisk": bench.asterisk.version(),
        "sipp": sipp_version[0] if sipp_version else "?",
        "python": platform.python_version(),
        "televikar_pbx": commit + ("+changes" if dirty else ""),
    }


def prepare(results_dir: Path, stamp: str) -> Path:
    """Root check, leftovers of a killed run, and a fresh work directory (older ones of
    this benchmark are removed: each holds ~100 MB of sipp logs)."""
    if os.geteuid() != 0:
        sys.exit("benchmarks/load.py: must run as root (chroot, mounts in its own namespace)")
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    left = procs.use_registry(BENCH_DIR / "running.json")
    if left:
        print(f"stopped {len(left)} processes a killed run left behind: {left}")
        time.sleep(2)
    tmp = results_dir / "tmp"
    for old in tmp.glob("load-*"):
        shutil.rmtree(old, ignore_errors=True)
    workdir = tmp / f"load-{stamp}"
    workdir.mkdir(parents=True)
    # SIGTERM (e.g. a CI timeout) must run the clean-up below like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    return workdir


def main(argv: list[str] | None = None) -> int:
    config, results_dir = parse_args(
        argv, __doc__.split("\n\n")[0], REPO / "benchmarks" / "results"
    )
    started = datetime.now(UTC)
    stamp = started.strftime("%Y-%m-%dT%H%M%SZ")
    workdir = prepare(results_dir, stamp)
    t0 = time.monotonic()
    bench = Bench(config, workdir)
    probes: list[dict[str, Any]] = []
    concurrency: dict[str, Any] | None = None
    message_burst: dict[str, Any] | None = None
    screen_pop: dict[str, Any] | None = None
    desk_pages: dict[str, Any] | None = None
    try:
        bench.asterisk.start()
        env = versions(bench)
        print(f"Asterisk {env['asterisk']} (pid {bench.asterisk.pid}); work files {workdir}")
        print("Steps:", flush=True)
        run_steps(bench)
        # The phases keep the workload they were measured with (--phase-agents).
        bench.config = replace(config, agents=min(config.agents, config.phase_agents))
        if config.message_burst and "ours" in config.systems:
            print(f"A burst of {config.message_burst} messages while routing:", flush=True)
            message_burst = run_burst_phase(
                bench, config.message_burst, config.burst_rate, config.burst_rounds
            )
            for line in report.burst_lines(message_burst):
                print(f"  {line}", flush=True)
        if config.screen_pop and "ours" in config.systems:
            print(f"Screen pop, {config.screen_pop} calls at {config.pop_rate:g}/s per step:",
                  flush=True)  # fmt: skip
            screen_pop = run_screen_pop_phase(
                bench, config.pop_pages, config.screen_pop, config.pop_rate,
                config.pop_answer_ms, config.pop_talk_ms,
            )  # fmt: skip
        if config.desk_pages and "ours" in config.systems:
            print(f"Routing with {config.desk_pages} desk pages connected:", flush=True)
            desk_pages = run_desk_pages_phase(
                bench, config.desk_pages, config.pages_rate, config.profile_pages,
                config.pages_rounds,
            )  # fmt: skip
            for line in report.desk_pages_lines(desk_pages):
                print(f"  {line}", flush=True)
        bench.config = config
        if config.probes and "queue" in config.systems:
            print("Queue() probes:", flush=True)
            probes = run_probes(bench)
        if config.waiting and "ours" in config.systems:
            # Arrivals well within what our service sustains, so that what degrades is
            # the number waiting, not the arrival rate.
            ours = sustained_rate([s for s in bench.steps if s.system == "ours"], config.limit_ms)
            # ... but the ramp takes at most a minute.
            rate = min(config.waiting_rate, max(config.waiting / 60, 0.8 * (ours or 0)))
            print(f"Callers waiting at once (our ACD), arriving at {rate:g}/s:", flush=True)
            concurrency = run_waiting(bench, config.waiting, rate)
    finally:
        bench.close()
    counted = [s for s in bench.steps if not s.superseded]
    firsts: dict[str, StepFigures] = {}
    for s in counted:
        if not s.eighty:
            firsts.setdefault(s.system, s)
    problems = gate_problems(firsts, config.answer_ms, GATE_MS)
    sustained = {
        system: sustained_rate([s for s in counted if s.system == system], config.limit_ms)
        for system in config.systems
    }
    comparison, goals = evaluate(counted, sustained, bench.stopped, concurrency, config.limit_ms)
    if problems:
        goals = {
            key: {**goal, "met": None, "detail": "invalid run (the sanity gate failed)"}
            for key, goal in goals.items()
        }
    profiled = any(s.system == "ours" and s.rate == config.profile_rate for s in bench.steps)
    if config.profile_rate and "ours" in config.systems and not profiled:
        bench.notes.append(
            f"no profile: our service had no step at --profile-rate {config.profile_rate:g}"
        )
    results = {
        "started": started.isoformat(timespec="seconds"),
        "command": " ".join(["benchmarks/load.py", *map(shlex.quote, sys.argv[1:])]),
        "duration_s": round(time.monotonic() - t0, 1),
        "environment": env,
        "config": config.__dict__
        | {
            "rates": list(config.rates),
            "systems": list(config.systems),
            "pop_pages": list(config.pop_pages),
        },
        "valid": not problems,
        "gate_problems": problems,
        "steps": [step_dict(s, config.limit_ms) for s in bench.steps],
        "sustained": sustained,
        "stopped": bench.stopped,
        "comparison": comparison,
        "goals": goals,
        "probes": probes,
        "concurrency": concurrency,
        "message_burst": message_burst,
        "screen_pop": screen_pop,
        "desk_pages": desk_pages,
        "profile": bench.profile,
        "idle_cpu": bench.idle,
        "notes": bench.notes,
    }
    results_dir.mkdir(parents=True, exist_ok=True)
    base = results_dir / stamp
    base.with_suffix(".json").write_text(json.dumps(results, indent=2, default=_json) + "\n")
    text = report.markdown(results)
    base.with_suffix(".md").write_text(text)
    print()
    print(text)
    print(f"Results: {base}.json, {base}.md")
    return 0 if not problems else 2


def step_dict(s: StepFigures, limit_ms: float) -> dict[str, Any]:
    return {
        "system": s.system,
        "rate": s.rate,
        "placed": s.placed,
        "failed": s.failed,
        "passed": s.passed(limit_ms),
        "routing_ms": s.routing.as_dict(),
        "answer_ms": s.answer.as_dict(),
        "asterisk_cpu_ms_per_call": round(s.asterisk_cpu_ms_per_call, 2),
        "ours_cpu_ms_per_call": None
        if s.ours_cpu_ms_per_call is None
        else round(s.ours_cpu_ms_per_call, 2),
        "ours_rss_kb": s.ours_rss_kb,
        "other_load_cores": round(s.other_load_cores, 3),
        "queue_log": s.queue_log,
        "channels_left": s.channels_left,
        "profiled": s.profiled,
        "repeated": s.superseded,
        "eighty": s.eighty,
        "machine_busy_cores": _round(s.machine_busy_cores, 3),
        "asterisk_cores": _round(s.asterisk_cores, 3),
        "ours_cores": _round(s.ours_cores, 3),
        "uas_max_core_pct": _round(s.uas_max_core_pct, 1),
        "carrier_core_pct": _round(s.carrier_core_pct, 1),
    }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _json(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    raise TypeError(f"not JSON: {value!r}")


if __name__ == "__main__":
    sys.exit(main())
