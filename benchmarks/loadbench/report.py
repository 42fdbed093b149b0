"""The benchmark's results as a Markdown report (the JSON is the results dict itself).
Pure: a results dict in, text out."""

from __future__ import annotations

from typing import Any

LABELS = {
    "ours": "our ACD (ARI)",
    "queue": "Asterisk Queue()",
    "bare": "bare Answer()",
}


def _uas(count: int) -> str:
    return "one sipp UAS" if count == 1 else f"{count} sipp UAS processes"


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def _num(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def steps_table(steps: list[dict[str, Any]]) -> str:
    """One row per system and step. The last two columns (while the calls ran): busy
    cores of the machine / Asterisk / our service, and the busiest agents' UAS / the
    carrier in % of one core (each sipp is one thread); "—" in older results."""
    head = (
        "| system | calls/s | placed | failed | routing p50 / p99 ms | INVITE→200 p50 / p99 ms "
        "| Asterisk CPU ms/call | our CPU ms/call | our RSS MB | other load (cores) "
        "| busy cores: machine / Asterisk / ours | sipp % of a core: UAS / carrier |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    rows = []
    for s in steps:
        routing, answer = s["routing_ms"], s["answer_ms"]
        rss = s.get("ours_rss_kb")
        mark = " (py-spy)" if s.get("profiled") else ""
        mark += " (repeated, see next)" if s.get("repeated") else ""
        mark += " (80 % step)" if s.get("eighty") else ""
        rows.append(
            f"| {LABELS.get(s['system'], s['system'])}{mark} | {s['rate']:g} | {s['placed']} "
            f"| {s['failed']} | {_ms(routing['p50'])} / {_ms(routing['p99'])} "
            f"| {_ms(answer['p50'])} / {_ms(answer['p99'])} "
            f"| {_num(s['asterisk_cpu_ms_per_call'])} | {_num(s.get('ours_cpu_ms_per_call'))} "
            f"| {_num(rss / 1024 if rss else None, 0)} | {_num(s['other_load_cores'], 2)} "
            f"| {_num(s.get('machine_busy_cores'), 2)} / {_num(s.get('asterisk_cores'), 2)} "
            f"/ {_num(s.get('ours_cores'), 2)} "
            f"| {_num(s.get('uas_max_core_pct'), 0)} / {_num(s.get('carrier_core_pct'), 0)} |"
        )
    return head + "\n".join(rows) + "\n"


def _pair(a: float | None, b: float | None) -> str:
    return f"{_ms(a)} / {_ms(b)}"


def _x(ratio: float | None) -> str:
    return "—" if ratio is None else f"x{ratio:.2f}"


def comparison_lines(c: dict[str, Any]) -> list[str]:
    """Ours against Queue(): the sustained rates and, at each rate both ran, latency and
    CPU per call side by side (issue 15)."""
    s = c["sustained"]
    bound = {
        "exact": "",
        "at most": " (at most: Queue()'s limit lies higher)",
        "at least": " (at least: our limit lies higher)",
        "unknown": " (neither limit reached: a bound neither way)",
    }.get(s["bound"], "")
    lines = [
        f"Sustained rate: ours **{s['ours_text']}** calls/s, Queue() **{s['queue_text']}** "
        f"calls/s; ours / Queue() = **{_x(s['ratio'])}**{bound}.",
    ]
    if c["rates_both_passed"]:
        lines.append(
            f"CPU per call, median over the rates both passed: ours "
            f"{_num(c['median_ours_cpu_ms'])} ms + Asterisk = "
            f"**{_num(c['median_ours_total_cpu_ms'])} ms** under our desk, Asterisk "
            f"**{_num(c['median_queue_cpu_ms'])} ms** under Queue(): total ours / Queue() = "
            f"**{_x(c['median_total_cpu_ratio'])}**; Asterisk alone "
            f"**{_x(c['median_asterisk_cpu_ratio'])}**."
        )
    if not c["per_rate"]:
        return [*lines, "", "(No rate at which both our desk and Queue() ran.)"]
    lines += [
        "",
        "| calls/s | routing p50 / p99 ms: ours | Queue() | CPU ms/call: ours + Asterisk "
        "= total | Queue() (Asterisk) | total ours / Queue() | Asterisk ours / Queue() "
        "| passed: ours / Queue() |",
        "|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in c["per_rate"]:
        lines.append(
            f"| {r['rate']:g} | {_pair(r['ours_routing_p50_ms'], r['ours_routing_p99_ms'])} "
            f"| {_pair(r['queue_routing_p50_ms'], r['queue_routing_p99_ms'])} "
            f"| {_num(r['ours_cpu_ms'])} + {_num(r['ours_asterisk_cpu_ms'])} = "
            f"{_num(r['ours_total_cpu_ms'])} | {_num(r['queue_asterisk_cpu_ms'])} "
            f"| {_x(r['total_cpu_ratio'])} | {_x(r['asterisk_cpu_ratio'])} "
            f"| {'yes' if r['ours_passed'] else 'no'} / {'yes' if r['queue_passed'] else 'no'} |"
        )
    return lines


def limit_lines(results: dict[str, Any]) -> list[str]:
    """For each system, how busy the machine and each part was at the step where it
    stopped (the first failed step; else its highest), and the agents' UAS at its
    busiest over the whole run: measured, so that what limited each system can be read
    off rather than guessed."""
    steps = [s for s in results["steps"] if not s.get("repeated") and not s.get("eighty")]
    cores = results["environment"]["machine"].get("cores", "?")
    lines = []
    for system, why in results.get("stopped", {}).items():
        own = [s for s in steps if s["system"] == system]
        if not own:
            continue
        failed = [s for s in own if not s.get("passed", True)]
        at = failed[0] if failed else max(own, key=lambda s: s["rate"])
        ours = f", our service {_num(at.get('ours_cores'), 2)}" if at.get("ours_cores") else ""
        uas = (  # the bare ceiling rings no agent
            ""
            if system == "bare"
            else f"busiest agents' UAS {_num(at.get('uas_max_core_pct'), 0)} % and "
        )
        lines.append(
            f"- {LABELS.get(system, system)}: {why}. At {at['rate']:g} calls/s the machine had "
            f"{_num(at.get('machine_busy_cores'), 2)} of {cores} cores busy (Asterisk "
            f"{_num(at.get('asterisk_cores'), 2)}{ours}), {uas}carrier "
            f"{_num(at.get('carrier_core_pct'), 0)} % of a core, other load "
            f"{_num(at['other_load_cores'], 2)} cores."
        )
    uas = [s for s in steps if s.get("uas_max_core_pct") is not None and s["system"] != "bare"]
    if uas:
        top = max(uas, key=lambda s: s["uas_max_core_pct"])
        count = results["config"].get("uas", 1)
        lines.append(
            f"- The agents' UAS ({count} sipp process{'es' if count != 1 else ''}): the busiest "
            f"used at most {top['uas_max_core_pct']:.0f} % of a core in any step "
            f"({LABELS.get(top['system'], top['system'])}, {top['rate']:g} calls/s). The bare "
            "Answer() ceiling needs no agent: it shows what the carrier and Asterisk's SIP "
            "stack sustain without the UAS."
        )
    return lines


def summary_lines(results: dict[str, Any]) -> list[str]:
    lines = []
    limit = results["config"]["limit_ms"]
    stopped = results.get("stopped", {})
    for system, rate in results["sustained"].items():
        shown = "none (the lowest step failed)" if rate is None else f"{rate:g} calls/s"
        why = stopped.get(system, "")
        if rate is not None and not why.startswith("failed"):
            shown += " or more"
        lines.append(
            f"- {LABELS.get(system, system)}: **{shown}** ({why})"
            if why
            else f"- {LABELS.get(system, system)}: **{shown}**"
        )
    lines.append(
        f"Sustained = the highest step with no failed call and p99 latency under "
        f"{limit:g} ms (routing latency; for the bare ceiling INVITE→200), every lower step "
        "passing too."
    )
    return lines


def goals_lines(goals: dict[str, Any]) -> list[str]:
    lines = []
    for goal in goals.values():
        mark = {True: "met", False: "MISSED", None: "not measured"}[goal["met"]]
        lines.append(f"- {goal['goal']}: **{mark}** — {goal['detail']}")
    return lines


def probes_table(probes: list[dict[str, Any]]) -> str:
    head = (
        "| probe | calls/s | placed | failed | INVITE→200 mean / max ms | CONNECT / ABANDON "
        "/ RINGNOANSWER | UAS errors | agent legs left |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    rows = []
    for p in probes:
        q = p["queue_log"]
        rows.append(
            f"| {p['label']} | {p['rate']:g} | {p['placed']} | {p['failed']} "
            f"| {_ms(p['answer_ms']['mean'])} / {_ms(p['answer_ms']['max'])} "
            f"| {q.get('CONNECT', 0)} / {q.get('ABANDON', 0)} / {q.get('RINGNOANSWER', 0)} "
            f"| {sum(n for _, n in p['uas_errors'])} | {p['channels_left']} |"
        )
    details = [
        f"- {p['label']}: UAS errors " + "; ".join(f"{n} x `{kind}`" for kind, n in p["uas_errors"])
        for p in probes
        if p["uas_errors"]
    ]
    return head + "\n".join(rows) + "\n" + ("\n" + "\n".join(details) + "\n" if details else "")


def concurrency_lines(c: dict[str, Any]) -> list[str]:
    degraded = c["degraded_at"]
    lines = [
        f"- {c['placed']} callers arrived at {c['rate']:g}/s and rang unanswered "
        f"(one never-answering agent per customer, {c['customers']} customers); "
        f"at most **{c['peak_waiting']}** waited at once in our queues.",
        "- Arrivals stayed fast (p99 INVITE→180 under 100 ms, none failed) "
        + (
            f"until **{degraded}** callers were waiting."
            if degraded is not None
            else "the whole way up."
        ),
        f"- Our RSS: {c['rss_before_kb'] / 1024:.0f} MB before, "
        f"{c['rss_peak_kb'] / 1024:.0f} MB at the peak: "
        f"**{_num(c['rss_growth_per_waiting_kb'])} KB per waiting caller** (all growth over "
        f"the peak count, start-up of the first calls included; the slope over the ramp "
        f"from 50 callers on is {_num(c['rss_per_waiting_kb'])} KB). Asterisk: "
        f"{_num(c['asterisk_rss_per_waiting_kb'])} KB per waiting caller (slope).",
        f"- `status` API at the peak: {_ms(c['status_ms_at_peak'])} ms.",
    ]
    return lines


def buckets_table(buckets: list[dict[str, Any]]) -> str:
    head = "| callers waiting on arrival | INVITE→180 p50 / p99 ms | failed |\n|---|---:|---:|\n"
    rows = [
        f"| {b['first'] - 1}-{b['last'] - 1} | {_ms(b['ringing_ms']['p50'])} / "
        f"{_ms(b['ringing_ms']['p99'])} | {b['failed']} |"
        for b in buckets
    ]
    return head + "\n".join(rows) + "\n"


def profile_lines(p: dict[str, Any]) -> list[str]:
    def top(key: str, n: int) -> str:
        return ", ".join(f"{name} {share:g} %" for name, share in p[key][:n])

    return [
        f"py-spy (`--gil`, 200 Hz) on our service during its {p['rate']:g} calls/s step, "
        f"{p['samples']} samples (~CPU time); shares of all samples:",
        "",
        f"- by library (inclusive): {top('inclusive_by_library', 10)}",
        f"- by function of ours (inclusive): {top('inclusive_by_our_function', 12)}",
        f"- hottest functions (self): {top('self_by_function', 8)}",
        f"- raw stacks: `{p['file']}`",
    ]


def _verdict(met: bool | None) -> str:
    return {True: "met", False: "MISSED", None: "not measured"}[met]


def _ratio(c: dict[str, Any]) -> str:
    return (
        f"**{_num(c['p99_ratio'], 3)}** (95 % interval {_num(c['p99_ratio_low'], 2)} to "
        f"{_num(c['p99_ratio_high'], 2)})"
    )


def _round_cells(r: dict[str, Any]) -> str:
    return (
        f"{r['routing_p50_ms']} / {r['routing_p99_ms']} / {r['routing_max_ms']} "
        f"| {r['placed']} / {r['failed']} | {r['ours_cpu_s']} | {r['other_load_cores']}"
    )


def burst_lines(b: dict[str, Any]) -> list[str]:
    """The phase for the Markdown report and the console."""
    q, w = b["quiet"], b["with_burst"]
    out = [
        f"At {b['rate']:g} calls/s, {len(b.get('rounds', [])) or 1} round(s), our routing "
        f"latency p50 / p99 / max over all rounds: quiet {q['routing_p50_ms']} / "
        f"{q['routing_p99_ms']} / {q['routing_max_ms']} ms ({q['placed']} calls, "
        f"{q['failed']} failed); with the burst {w['routing_p50_ms']} / "
        f"{w['routing_p99_ms']} / {w['routing_max_ms']} ms ({w['placed']} calls, "
        f"{w['failed']} failed). Our service's CPU: {q['ours_cpu_s']} and "
        f"{w['ours_cpu_s']} s; other work on the machine: "
        f"{q.get('other_load_cores', '?')} and {w.get('other_load_cores', '?')} cores.",
    ]
    if "comparison" in b:
        out.append(
            f"p99 with the burst / quiet = {_ratio(b['comparison'])}; p50 ratio "
            f"{_num(b['comparison']['p50_ratio'], 3)}. Goal (no worse: "
            f"ratio ≤ 1.10 and its interval reaching 1.0, no call failed): "
            f"**{_verdict(b['goal_met'])}**."
        )
    rounds = b.get("rounds") or [{"quiet": q, "with_burst": w, "burst": b["burst"]}]
    out += [
        "",
        "| round | step | routing p50 / p99 / max ms | calls / failed | our CPU s | "
        "other load (cores) | the burst |",
        "|---:|---|---:|---:|---:|---:|---|",
    ]
    for n, r in enumerate(rounds, 1):
        m = r["burst"]
        if m.get("delivered_s") is not None:
            burst = (
                f"{m['messages']} saved in {m['saved_s']} s, all accepted {m['delivered_s']} s "
                f"after their commit ({m['messages_per_s']}/s); outbox {m['outbox']}"
            )
        else:
            burst = "; ".join(f"WRONG: {p}" for p in m.get("problems", [])) or "?"
        out.append(f"| {n} | quiet | {_round_cells(r['quiet'])} | |")
        out.append(f"| {n} | burst | {_round_cells(r['with_burst'])} | {burst} |")
    for r in rounds:
        out += [f"WRONG: {p}" for p in r["burst"].get("problems", [])]
    return out


def _spread(d: dict[str, Any]) -> str:
    return " / ".join(_num(d[k]) for k in ("min", "p50", "p99", "max"))


def screen_pop_table(p: dict[str, Any]) -> str:
    """One row per number of pages."""
    head = (
        "| pages | calls | pops | INVITE→page min / p50 / p99 / max ms | last page of a call "
        "min / p50 / p99 / max ms | missing | routing p50 / p99 ms | our CPU s |\n"
        "|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    rows = []
    for s in p["steps"]:
        pop = s["pop"]
        rows.append(
            f"| {s['pages']} | {pop['calls']} | {pop['per_page_ms']['n']} "
            f"| {_spread(pop['per_page_ms'])} | {_spread(pop['last_page_ms'])} "
            f"| {pop['missing']} | {_ms(s['routing_p50_ms'])} / {_ms(s['routing_p99_ms'])} "
            f"| {_num(s['ours_cpu_s'])} |"
        )
    return head + "\n".join(rows) + "\n"


def screen_pop_lines(p: dict[str, Any]) -> list[str]:
    return [
        f"One customer served by one agent, every page following that agent; "
        f"{p['calls']} calls per step at {p['rate']:g}/s, answered after "
        f"{p['answer_ms']} ms, {p['talk_ms']} ms long. Latency = a page's receipt of the "
        "`offered` card with the call (time.time()) minus the agent phone's receipt of the "
        "call's INVITE (sipp's message log), same clock; negative = the page had it "
        "before the phone rang.",
        "",
        screen_pop_table(p),
    ]


def desk_pages_lines(d: dict[str, Any]) -> list[str]:
    """The routing with/without pages phase, for the report and the console."""
    w, p, pop = d["without"], d["with_pages"], d["pop"]
    rounds = d.get("rounds") or [{"without": w, "with_pages": p}]
    ratio = _ratio(d["comparison"]) if "comparison" in d else f"**{_num(d['p99_ratio'], 3)}**"
    out = [
        f"At {d['rate']:g} calls/s, {len(rounds)} round(s), our routing latency p50 / p99 / "
        f"max over all rounds: no page {w['routing_p50_ms']} / {w['routing_p99_ms']} / "
        f"{w['routing_max_ms']} ms ({w['placed']} calls, {w['failed']} failed); "
        f"{d['pages']} pages on {d['agents_followed']} agents' feeds {p['routing_p50_ms']} / "
        f"{p['routing_p99_ms']} / {p['routing_max_ms']} ms ({p['placed']} calls, "
        f"{p['failed']} failed). Our service's CPU: {w['ours_cpu_s']} and {p['ours_cpu_s']} s; "
        f"the benchmark's own (with the pages' client): {w.get('harness_cpu_s', '?')} and "
        f"{p.get('harness_cpu_s', '?')} s; other work on the machine: "
        f"{w['other_load_cores']} and {p['other_load_cores']} cores.",
        f"p99 with / without = {ratio} (goal ≤ 1.10: **{_verdict(d['goal_met'])}**); "
        f"p50 ratio {_num(d['p50_ratio'], 3)}.",
    ]
    if pop is not None:
        out.append(
            f"Pops on the pages in the last round: {pop['per_page_ms']['n']} (of "
            f"{pop['calls']} calls), INVITE→page min / p50 / p99 / max "
            f"{_spread(pop['per_page_ms'])} ms; missing {pop['missing']}, on no page "
            f"{pop['unpopped']}."
        )
    out += [
        "",
        "| round | step | routing p50 / p99 / max ms | calls / failed | our CPU s | "
        "other load (cores) |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for n, r in enumerate(rounds, 1):
        out.append(f"| {n} | no page | {_round_cells(r['without'])} |")
        out.append(f"| {n} | {d['pages']} pages | {_round_cells(r['with_pages'])} |")
    for r in d.get("discarded_rounds", []):
        out.append(f"| run again | no page | {_round_cells(r['without'])} |")
        out.append(f"| run again | {d['pages']} pages | {_round_cells(r['with_pages'])} |")
    return out


def markdown(results: dict[str, Any]) -> str:
    cfg, env = results["config"], results["environment"]
    rates = ", ".join(f"{r:g}" for r in cfg["rates"])
    parts = [
        f"# Load benchmark {results['started']}",
        "",
        f"`{results['command']}` — {results['duration_s'] / 60:.1f} min.",
        "",
        f"Machine: {env['machine']['cpu']}, {env['machine']['cores']} cores, "
        f"{env['machine']['memory_mb']} MB, {env['machine']['os']}, "
        f"kernel {env['machine']['kernel']}. Asterisk {env['asterisk']}, sipp "
        f"{env['sipp']}, Python {env['python']}, televikar-pbx {env['televikar_pbx']}.",
        "",
        f"Workload: {cfg['agents']} agents on {_uas(cfg.get('uas', 1))} answering after "
        f"{cfg['answer_ms']} ms; calls of {cfg['talk_ms']} ms to {cfg['customers']} "
        f"customers in turn; steps of {cfg['step_s']:g} s at {rates} calls/s; "
        f"ring timeout {cfg['ring_timeout_s']} s, no wrap-up; a call fails when it "
        f"is rejected or not answered within {cfg['answer_timeout_ms'] / 1000:g} s. "
        f"Service log level {cfg['log_level']}.",
        "",
    ]
    idle = results.get("idle_cpu") or {}
    if idle:
        parts[-1:] = [
            "At rest (no calls): "
            + ", ".join(
                f"{'Asterisk' if k.startswith('asterisk') else 'our service'} {v:g} % of a core"
                for k, v in idle.items()
            )
            + "; that is in every step's CPU per call too, most at the lowest rate.",
            "",
        ]
    if not results["valid"]:
        parts += [
            "**INVALID RUN**: the sanity gate failed, so there is no comparison:",
            "",
            *[f"- {p}" for p in results["gate_problems"]],
            "",
        ]
    parts += ["## Steps", "", steps_table(results["steps"])]
    if results["valid"]:
        parts += ["## Sustained rate", "", *summary_lines(results), ""]
        if results.get("comparison"):
            parts += ["## Ours against Queue()", "", *comparison_lines(results["comparison"]), ""]
    limits = limit_lines(results)
    if limits:
        parts += ["## What limited each system (measured)", "", *limits, ""]
    if results.get("concurrency"):
        parts += [
            "## Callers waiting at once (our ACD)",
            "",
            *concurrency_lines(results["concurrency"]),
            "",
            buckets_table(results["concurrency"]["buckets"]),
        ]
    if results.get("message_burst"):
        parts += [
            "## A burst of messages while routing",
            "",
            *burst_lines(results["message_burst"]),
            "",
        ]
    if results.get("screen_pop"):
        parts += ["## Screen pop on the desk's pages", "", *screen_pop_lines(results["screen_pop"])]
    if results.get("desk_pages"):
        parts += [
            "## Routing with the desk's pages connected",
            "",
            *desk_pages_lines(results["desk_pages"]),
            "",
        ]
    if results.get("profile"):
        parts += ["## Where our CPU goes", "", *profile_lines(results["profile"]), ""]
    if results.get("probes"):
        parts += ["## Queue() probes", "", probes_table(results["probes"])]
    if results.get("notes"):
        parts += ["## Notes", "", *[f"- {n}" for n in results["notes"]], ""]
    parts += ["## Goals", "", *goals_lines(results["goals"]), ""]
    return "\n".join(parts)
