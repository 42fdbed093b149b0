"""Queue()'s "10 calls/s" pathology: probes that tell app_queue's part from the harness's.

Seen before this benchmark existed (shared/LAB-NOTES.md): Queue() with 50 idle agents
on sipp's built-in ``-sn uas`` connected callers in ~10 ms at 5 calls/s, but made them
wait 13-28 s at 10 calls/s with the CPU idle, with members ringing unanswered for the
whole ring timeout and the UAS aborting calls. The probes send probe_rate calls/s to ONE
queue (the pathology is per queue) with either UAS, autofill on and off. For each:
failed calls, the callers' wait, app_queue's own events (queue_log: RINGNOANSWER = a
member rang unanswered for the whole ring timeout, ABANDON = the caller gave up), what
the UAS complained about, and agent legs still up after the callers had hung up (a leg
whose BYE the UAS never answered keeps its agent busy for ~32 s).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from benchmarks.loadbench import sipp
from benchmarks.loadbench.stats import queue_log_events, sipp_error_kinds

if TYPE_CHECKING:
    from benchmarks.load import Bench

PROBES = (
    ("sipp -sn uas (built-in, answers at once), autofill", "queue", True),
    ("sipp -sn uas (built-in, answers at once), autofill = no", "queue-nofill", True),
    ("our UAS (answers after the answer delay), autofill = no", "queue-nofill", False),
    ("our UAS (answers after the answer delay), autofill", "queue", False),
)


def run_probes(bench: Bench) -> list[dict[str, Any]]:
    cfg = bench.config
    results = []
    for label, system, builtin in PROBES:
        name = f"probe_{system}{'_builtin' if builtin else ''}"
        agents = bench.start_agents(name, cfg.answer_ms, builtin)
        errors_before = [sipp.size(log) for log in agents.error_logs]
        got = bench.run_calls(system, cfg.probe_rate, cfg.probe_s, name, customers=1)
        channels_left = bench.asterisk.channel_count()
        events = queue_log_events(bench.asterisk.queue_log(), since=got["started"])
        errors = sipp_error_kinds(
            "\n".join(
                sipp.read_from(log, offset)
                for log, offset in zip(agents.error_logs, errors_before, strict=True)
            )
        )
        result = {
            "label": f"Queue(), one queue, {label}",
            "rate": cfg.probe_rate,
            "placed": got["placed"],
            "failed": got["failed"],
            "answer_ms": got["answer"].as_dict(),
            "routing_ms": got["routing"].as_dict(),
            "queue_log": dict(events),
            "uas_errors": errors,
            "channels_left": channels_left,
        }
        results.append(result)
        print(
            f"  {label}: {got['placed']} placed, {got['failed']} failed, INVITE->200 mean "
            f"{got['answer'].mean:.0f} ms, max {got['answer'].max:.0f} ms; queue_log "
            f"{dict(events)}; UAS errors {errors}; agent legs left {channels_left}",
            flush=True,
        )
        bench.clean_up_channels(name)
        time.sleep(1.0)
    bench.stop_agents()
    return results
