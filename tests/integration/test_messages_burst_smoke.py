"""The message burst benchmark (benchmarks/messages_burst.py) on a small burst, so that
it cannot rot: the real worker in its own process delivers every message once, each to
its own customer's address, on both ways of saving. Timings are never asserted."""

from __future__ import annotations

import pytest

from benchmarks.messages_burst import main


@pytest.mark.parametrize("at_once", [False, True])
def test_a_small_burst_is_delivered_once_each(
    at_once: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--messages", "30", "--customers", "3", "--poll-s", "0.1"]
    assert main(args + (["--at-once"] if at_once else [])) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert "WRONG" not in out and "outbox {'sent': 30}" in out
