"""The load benchmark's pure parts (benchmarks/loadbench): sipp logs in, latencies and
verdicts out; no Asterisk, no sipp."""

from __future__ import annotations

import math
import stat
from datetime import datetime
from pathlib import Path

import pytest

from benchmarks.loadbench import report
from benchmarks.loadbench.asterisk import Layout, Ports, render_config
from benchmarks.loadbench.burst import verdict as burst_verdict
from benchmarks.loadbench.profile import package_of, summarize
from benchmarks.loadbench.stats import (
    StepFigures,
    Summary,
    agent_offers,
    answer_latencies_ms,
    carrier_calls,
    compare,
    first_degraded,
    gate_problems,
    machine_cpu_ticks,
    parse_messages,
    percentile,
    proc_cpu_ticks,
    proc_status_kb,
    queue_log_events,
    ringing_latencies_ms,
    routing_latencies_ms,
    sipp_error_kinds,
    stat_totals,
    sustained_rate,
    waiting_buckets,
)
from benchmarks.loadbench.waiting import slope


def entry(at: str, direction: str, text: str) -> str:
    """One message as sipp's -trace_msg writes it (CRLF line ends)."""
    body = text.strip("\n").replace("\n", "\r\n")
    size = len(body)
    what = (
        f"UDP message {direction} [{size}] bytes :"
        if direction == "received"
        else (f"UDP message {direction} ({size} bytes):")
    )
    return (
        f"----------------------------------------------- 2026-11-27 {at}\n{what}\n\n{body}\r\n\r\n"
    )


def invite(call_id: str, caller: str, to_tag: str = "", via: str = "127.0.0.4") -> str:
    return (
        f"INVITE sip:4721100001@127.0.0.1:5160 SIP/2.0\n"
        f"Via: SIP/2.0/UDP {via}:5300;branch=z9hG4bK-1\n"
        f"From: <sip:{caller}@{via}:5300>;tag=1\n"
        f"To: <sip:4721100001@127.0.0.1:5160>{to_tag}\n"
        f"Call-ID: {call_id}\nCSeq: 1 INVITE\nContent-Length: 0\n"
    )


def response(code: int, reason: str, call_id: str, method: str = "INVITE") -> str:
    return (
        f"SIP/2.0 {code} {reason}\nVia: SIP/2.0/UDP 127.0.0.4:5300;branch=z9hG4bK-1\n"
        f"From: <sip:x@127.0.0.4>;tag=1\nTo: <sip:4721100001@127.0.0.1>;tag=as1\n"
        f"i: {call_id}\nCSeq: 1 {method}\nContent-Length: 0\n"
    )


CARRIER_LOG = "".join(
    [
        entry("10:00:00.000000", "sent", invite("c1", "479011")),
        entry("10:00:00.010000", "received", response(100, "Trying", "c1")),
        entry("10:00:00.100000", "sent", invite("c2", "479012")),
        entry("10:00:00.500000", "sent", invite("c1", "479011")),  # a retransmission
        entry("10:00:00.250000", "received", response(200, "OK", "c1")),
        entry("10:00:00.140000", "received", response(180, "Ringing", "c2")),
        entry("10:00:00.700000", "received", response(486, "Busy Here", "c2")),
        entry("10:00:01.300000", "received", response(200, "OK", "c1", "BYE")),
    ]
)
AGENT_LOG = "".join(
    [
        entry("10:00:00.020000", "received", invite("a1", "479011", via="127.0.0.1")),
        entry("10:00:00.520000", "received", invite("a1", "479011", via="127.0.0.1")),
        # a re-INVITE (To tag) and a second offer of the same caller do not count
        entry("10:00:00.900000", "received", invite("a1", "479011", ";tag=x", "127.0.0.1")),
        entry("10:00:00.950000", "received", invite("a2", "479011", via="127.0.0.1")),
    ]
)


def test_percentile_interpolates_between_ranks_and_summary_is_nan_when_empty() -> None:
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([5], 99) == 5
    assert percentile(list(range(1, 101)), 99) == pytest.approx(99.01)
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError):
        percentile([1], 101)
    empty = Summary.of([])
    assert empty.n == 0 and math.isnan(empty.p99)
    assert empty.as_dict() == {"n": 0, "mean": None, "p50": None, "p99": None, "max": None}
    assert Summary.of([10, 20, 30]).as_dict()["mean"] == 20


def test_sipp_message_log_is_parsed_with_times_directions_and_headers() -> None:
    messages = list(parse_messages(CARRIER_LOG))
    assert len(messages) == 8
    first = messages[0]
    assert first.sent and first.method == "INVITE" and first.status is None
    assert first.call_id == "c1" and first.from_user == "479011" and not first.to_tagged
    assert first.time == datetime(2026, 11, 27, 10, 0, 0).timestamp()
    ok = messages[4]
    assert not ok.sent and ok.status == 200 and ok.cseq_method == "INVITE"
    assert ok.call_id == "c1"  # compact header "i:"


def test_routing_and_answer_latency_match_the_carrier_call_to_the_agent_invite() -> None:
    calls = carrier_calls(parse_messages(CARRIER_LOG))
    assert [c.call_id for c in calls] == ["c1", "c2"]
    c1, c2 = calls
    assert c1.answered_at is not None and c1.final_status == 200
    assert c2.answered_at is None and c2.final_status == 486 and c2.ringing_at is not None
    offers = agent_offers(parse_messages(AGENT_LOG))
    assert offers == {"479011": datetime(2026, 11, 27, 10, 0, 0, 20000).timestamp()}
    assert routing_latencies_ms(calls, offers) == [pytest.approx(20.0, abs=0.01)]
    assert answer_latencies_ms(calls) == [pytest.approx(250.0, abs=0.01)]
    assert ringing_latencies_ms(calls) == [pytest.approx(40.0, abs=0.01)]


def test_sipp_statistics_proc_files_and_queue_log() -> None:
    csv = (
        "StartTime;OutgoingCall(P);OutgoingCall(C);SuccessfulCall(C);FailedCall(C);\n"
        "x;1;10;9;0;\n"
        "x;0;20;18;2;\n"
    )
    assert stat_totals(csv) == {"OutgoingCall(C)": 20, "SuccessfulCall(C)": 18, "FailedCall(C)": 2}
    assert stat_totals("") == {}
    stat_line = "4242 (python (serve) x) S 1 4242 4242 0 -1 4194304 10 0 0 0 150 25 0 0 20 0 3"
    assert proc_cpu_ticks(stat_line) == 175
    assert proc_status_kb("Name:\tpython\nVmHWM:\t  90000 kB\nVmRSS:\t  81234 kB\n") == 81234
    assert proc_status_kb("VmRSS:\t 1 kB\n", "VmHWM") == 0
    assert machine_cpu_ticks("cpu  100 5 50 800 45 0 0 0 0 0\ncpu0 1 2 3 4\n") == (155, 1000)
    log = (
        "1795748794|NONE|NONE|NONE|QUEUESTART|\n"
        "1795748800|1.1|bench-001|PJSIP/agentb1|RINGNOANSWER|15000|1|1\n"
        "1795748801|1.2|bench-001|PJSIP/agentb2|CONNECT|1|1.3|0\n"
        "1795748802|1.2|bench-001|PJSIP/agentb2|RINGNOANSWER|15000|1|1\n"
        "garbage\n"
    )
    assert queue_log_events(log, since=1795748800) == {"RINGNOANSWER": 2, "CONNECT": 1}


def test_sipp_error_log_is_grouped_by_kind_without_ids_and_numbers() -> None:
    text = (
        "2026-11-27\t03:04:57.778509\t1795748697.778509: Aborting call on unexpected "
        "message for Call-Id '5-26@127.0.0.5': while expecting 'ACK' (index 3), received "
        "'BYE sip:agentb3@127.0.0.5:5200 SIP/2.0'\n"
        "2026-11-27\t03:04:58.000001\t1795748698.000001: Aborting call on unexpected "
        "message for Call-Id '9-26@127.0.0.5': while expecting 'ACK' (index 3), received "
        "'BYE sip:agentb7@127.0.0.5:5200 SIP/2.0'\n"
        "2026-11-27\t03:04:59.000001\t1795748699.000001: Call-Id: 2-26489@127.0.0.7, "
        "receive timeout on message televikar:10, jumping to label 11\n"
    )
    kinds = sipp_error_kinds(text)
    assert kinds[0][1] == 2
    assert "Aborting call on unexpected message" in kinds[0][0]
    assert "agentb" not in kinds[0][0] and "26@" not in kinds[0][0]
    assert kinds[1][1] == 1 and "receive timeout" in kinds[1][0]
    assert sipp_error_kinds("") == []


def step(rate: float, failed: int = 0, p99: float = 10.0, system: str = "ours") -> StepFigures:
    values = [5.0] * 98 + [p99] * 2
    routing = Summary.of(values) if system != "bare" else Summary.of([])
    answer = Summary.of([v + 200 for v in values] if system != "bare" else values)
    return StepFigures(system, rate, 100, failed, routing, answer, 10.0, 30.0, 80_000, 0.1)


def test_a_step_passes_without_failures_and_under_the_p99_limit() -> None:
    assert step(5).passed(100)
    assert not step(5, failed=1).passed(100)
    assert not step(5, p99=150).passed(100)
    assert step(5, system="bare").passed(100)
    missing = step(5)
    missing.routing = Summary.of([1.0] * 90)  # ten calls never reached an agent
    assert not missing.passed(100)


def test_sustained_rate_is_the_top_of_the_unbroken_run_of_passing_steps() -> None:
    steps = [step(20, p99=120), step(5), step(10), step(30)]
    assert sustained_rate(steps, 100) == 10  # 30 passing after 20 failed does not count
    assert sustained_rate([step(5, failed=3)], 100) is None
    noisy = step(5, p99=300)
    noisy.superseded = True  # repeated: the repeat (passing) counts
    assert sustained_rate([noisy, step(5), step(10)], 100) == 10
    assert sustained_rate([], 100) is None


def test_the_sanity_gate_wants_every_system_connected_fast_at_the_lowest_rate() -> None:
    good = {"ours": step(5), "queue": step(5, system="queue"), "bare": step(5, system="bare")}
    assert gate_problems(good, answer_ms=200) == []
    slow = step(5, system="queue")
    slow.answer = Summary.of([15_000.0] * 100)  # Queue() callers waiting 15 s
    problems = gate_problems({**good, "queue": slow}, answer_ms=200)
    assert len(problems) == 1 and problems[0].startswith("queue: callers waited 14800 ms")
    failing = gate_problems({"bare": step(5, failed=2, system="bare")}, answer_ms=200)
    assert failing == ["bare: 2 of 100 calls failed at 5 calls/s"]


def test_waiting_callers_are_bucketed_by_arrival_and_the_first_slow_bucket_found() -> None:
    calls = carrier_calls(parse_messages(CARRIER_LOG))
    buckets = waiting_buckets(calls, size=1)
    assert [(b.first, b.last, b.failed) for b in buckets] == [(1, 1, 1), (2, 2, 1)]
    assert first_degraded(buckets) == 0
    assert first_degraded([]) is None
    assert slope([(100, 1000.0), (200, 3000.0), (300, 5000.0)]) == pytest.approx(20.0)
    assert slope([(1, 1.0), (1, 2.0)]) is None


def test_profile_summary_attributes_samples_to_libraries_and_our_functions() -> None:
    site = "/work/main/.venv/lib/python3.11/site-packages"
    ours = "/work/main/src/televikar_pbx"
    collapsed = (
        f"run (/usr/lib/python3.11/asyncio/runners.py:1);"
        f"CallService._close ({ours}/calls/services.py:5);"
        f"Session.execute ({site}/sqlalchemy/orm/session.py:9) 3\n"
        f"run (/usr/lib/python3.11/asyncio/runners.py:1);"
        f"AriClient._call ({ours}/ari/adapter.py:7);"
        f"ClientSession._request ({site}/aiohttp/client.py:3) 1\n"
        "not a stack line\n"
    )
    summary = summarize(collapsed)
    assert summary["samples"] == 4
    assert dict(summary["inclusive_by_library"]) == {
        "sqlalchemy": 75.0,
        "televikar_pbx.calls": 75.0,
        "televikar_pbx.ari": 25.0,
        "aiohttp": 25.0,
    }
    assert (
        dict(summary["inclusive_by_our_function"])["CallService._close (televikar_pbx.calls)"]
        == 75.0
    )
    assert summary["self_by_function"][0] == ["Session.execute (sqlalchemy)", 75.0]
    assert package_of("<frozen runpy>") == "stdlib:runpy"


def test_bench_asterisk_config_is_complete_and_keeps_passwords_private(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    layout = Layout(customers=2, agents=3, ari_app="televikar-bench", ring_timeout_s=15,
                    bare_wait_s=31)  # fmt: skip
    render_config(etc, layout, Ports(), {"ARI_PASSWORD": "a-secret", "AMI_PASSWORD": "b-secret"})
    for name in ("pjsip.conf", "extensions.conf", "queues.conf", "http.conf", "rtp.conf"):
        assert "@" not in (etc / name).read_text().replace("@127.0.0", "").replace(
            "agentb1@", ""
        ).replace("agentb2@", "").replace("agentb3@", "")
    pjsip = (etc / "pjsip.conf").read_text()
    assert "bind = 127.0.0.1:5160" in pjsip and "match = 127.0.0.4" in pjsip
    assert "contact = sip:agentb3@127.0.0.5:5200" in pjsip and "agentb4" not in pjsip
    queues = (etc / "queues.conf").read_text()
    assert "[bench-002](bench-queue)" in queues and "timeout = 15" in queues
    assert queues.count("member => PJSIP/agentb3") == 4  # bench-00N and bench-nofill-00N
    extensions = (etc / "extensions.conf").read_text()
    assert "Stasis(televikar-bench,inbound,${EXTEN})" in extensions and "Wait(31)" in extensions
    assert "bindport = 8189" in (etc / "http.conf").read_text()
    for private in ("ari_users.conf", "manager_users.conf"):
        assert stat.S_IMODE((etc / private).stat().st_mode) == 0o600
    assert "a-secret" in (etc / "ari_users.conf").read_text()
    assert (etc / "modules.conf").read_text() == (
        Path(__file__).resolve().parents[2] / "asterisk" / "conf" / "modules.conf"
    ).read_text()


def test_the_markdown_report_renders_a_minimal_run() -> None:
    figures = step(5)
    results = {
        "started": "2026-11-27T10:00:00+00:00",
        "command": "benchmarks/load.py",
        "duration_s": 60.0,
        "environment": {
            "machine": {"cpu": "cpu", "cores": 2, "memory_mb": 1, "os": "os", "kernel": "k"},
            "asterisk": "22",
            "sipp": "3.6.1",
            "python": "3.11",
            "televikar_pbx": "abc",
        },
        "config": {
            "agents": 50,
            "customers": 5,
            "answer_ms": 200,
            "talk_ms": 1000,
            "step_s": 20.0,
            "rates": [5.0],
            "ring_timeout_s": 15,
            "answer_timeout_ms": 10000,
            "log_level": "warning",
            "limit_ms": 100.0,
        },
        "valid": True,
        "gate_problems": [],
        "steps": [
            {
                "system": "ours",
                "rate": 5.0,
                "placed": 100,
                "failed": 0,
                "routing_ms": figures.routing.as_dict(),
                "answer_ms": figures.answer.as_dict(),
                "asterisk_cpu_ms_per_call": 10.0,
                "ours_cpu_ms_per_call": 30.0,
                "ours_rss_kb": 81920,
                "other_load_cores": 0.1,
            }
        ],
        "sustained": {"ours": 5.0},
        "stopped": {"ours": "passed every step"},
        "goals": {"rate": {"goal": "g", "met": True, "detail": "d"}},
        "probes": [],
        "concurrency": None,
        "profile": None,
        "notes": [],
    }
    text = report.markdown(results)
    assert (
        "| our ACD (ARI) | 5 | 100 | 0 | 5.0 / 10 | 205 / 210 | 10.0 | 30.0 | 80 | 0.10 |" in text
    )
    assert "- our ACD (ARI): **5 calls/s or more** (passed every step)" in text
    assert "INVALID" not in report.markdown(
        {**results, "valid": True}
    ) and "INVALID RUN" in report.markdown({**results, "valid": False, "gate_problems": ["x"]})


def test_compare_the_same_latencies_gives_one_and_an_interval_around_it() -> None:
    base = [5.0 + (i * 37 % 100) / 20 for i in range(600)]  # 5..10 ms, spread out
    c = compare(base, list(reversed(base)))
    assert c.ratio == pytest.approx(1.0)
    assert c.ratio_low <= 1.0 <= c.ratio_high
    assert c.p50_ratio == pytest.approx(1.0)
    assert c.as_dict()["p99_ratio"] == 1.0


def test_compare_sees_a_slowdown_chance_would_not_give() -> None:
    base = [5.0 + (i * 37 % 100) / 20 for i in range(600)]
    slower = [x * 1.5 for x in base]
    c = compare(base, slower)
    assert c.ratio == pytest.approx(1.5)
    assert 1.3 < c.ratio_low <= 1.5 <= c.ratio_high
    # Reproducible: the same numbers give the same interval.
    assert compare(base, slower).ratio_low == c.ratio_low


def test_compare_with_nothing_to_compare() -> None:
    c = compare([], [1.0])
    assert math.isnan(c.ratio) and c.as_dict()["p99_ratio"] is None


def test_the_burst_verdict_needs_no_failure_a_small_ratio_and_chance_to_explain_it() -> None:
    base = [5.0 + (i * 37 % 100) / 20 for i in range(600)]
    same = compare(base, list(reversed(base)))
    assert burst_verdict(same, failed=0) is True
    assert burst_verdict(same, failed=1) is False
    assert burst_verdict(compare(base, [x * 1.5 for x in base]), failed=0) is False
    # Within 10 %, but every resample says slower: worse, if only a little.
    assert burst_verdict(compare(base, [x * 1.08 for x in base]), failed=0) is False
    assert burst_verdict(compare([], base), failed=0) is None


def test_the_burst_report_has_the_pooled_ratio_and_a_row_per_step() -> None:
    step = {"placed": 200, "failed": 0, "routing_p50_ms": 9.0, "routing_p99_ms": 14.0,
            "routing_max_ms": 15.0, "ours_cpu_s": 5.5, "other_load_cores": 0.0}  # fmt: skip
    burst = {"messages": 1000, "saved_s": 4.2, "delivered_s": 33.8, "messages_per_s": 29.6,
             "outbox": {"sent": 1000}}  # fmt: skip
    phase = {
        "rate": 10.0, "quiet": step, "with_burst": step, "burst": burst, "goal_met": True,
        "rounds": [{"quiet": step, "with_burst": step, "burst": burst}] * 3,
        "comparison": {"p99_ratio": 1.02, "p99_ratio_low": 0.9, "p99_ratio_high": 1.15,
                       "p50_ratio": 1.0},
    }  # fmt: skip
    lines = report.burst_lines(phase)
    assert lines[0].startswith("At 10 calls/s, 3 round(s),")
    assert "**1.020** (95 % interval 0.90 to 1.15)" in lines[1]
    assert "**met**" in lines[1]
    row = "| 3 | burst | 9.0 / 14.0 / 15.0 | 200 / 0 | 5.5 | 0.0 | 1000 saved in 4.2 s"
    assert any(line.startswith(row) for line in lines)
