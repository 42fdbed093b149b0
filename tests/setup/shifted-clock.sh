#!/usr/bin/env bash
# The fast suite once more under shifted clocks and without any bytecode cache, so a test
# that only passes on the day it was written, at some hours, or when a .pyc happens to be
# cached, fails here (issue 11). Run by `make test` (tests/setup/run-all.sh), beside the
# real-Asterisk tests; extra arguments go to each pytest run.
#
#   a year ahead of today, at the current time of day
#   01:59:59 Europe/Oslo on the last Sunday of March next year (the clock jumps to 03:00)
#   01:59:59 Europe/Oslo on the last Sunday of October next year (02:00-03:00 comes twice)
#
# The clock is moved inside the test process by time-machine (tests/conftest.py reads
# TELEVIKAR_TEST_CLOCK): every wall-clock read starts at the instant and runs on, while
# monotonic clocks stay real (asyncio's timers need them). Not libfaketime: under
# LD_PRELOAD it re-reads the environment while other threads run, and a test's setenv
# beside a server thread (aiosmtpd) crashed the process with a segmentation fault.
# PYTHONPYCACHEPREFIX points at an empty folder, so every module, ours and third
# parties', is compiled from source under pytest's warning filters, as on a fresh
# machine with PYTHONDONTWRITEBYTECODE=1.
set -euo pipefail
cd "$(dirname "$0")/../.."

next=$(($(date +%Y) + 1))
last_sunday() { # last_sunday MONTH -> YYYY-MM-DD of next year
    local d
    d=$(date -d "$next-$1-01 +1 month -1 day" +%F)
    while [[ $(date -d "$d" +%u) != 7 ]]; do d=$(date -d "$d -1 day" +%F); done
    echo "$d"
}

status=0
for at in "$(date -d '+1 year' '+%F %T')" "$(last_sunday 03) 01:59:59" "$(last_sunday 10) 01:59:59"; do
    cache=$(mktemp -d)
    instant=$(TZ=Europe/Oslo date -d "$at" --iso-8601=seconds)
    echo "== fast suite with the clock at $instant, no bytecode cache =="
    TZ=Europe/Oslo TELEVIKAR_TEST_CLOCK="$instant" PYTHONDONTWRITEBYTECODE=1 \
        PYTHONPYCACHEPREFIX="$cache" \
        .venv/bin/pytest -q -p no:cacheprovider -m "not asterisk and not postgres" "$@" || status=1
    rm -rf "$cache"
done
exit $status
