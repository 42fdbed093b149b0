#!/usr/bin/env bash
# The fast suite once more under shifted clocks and without any bytecode cache, so a test
# that only passes on the day it was written, at some hours, or when a .pyc happens to be
# cached, fails here (issue 11). Run by `make test` after the main run; needs faketime.
#
#   a year ahead of today, at the current time of day
#   01:59:59 Europe/Oslo on the last Sunday of March next year (the clock jumps to 03:00)
#   01:59:59 Europe/Oslo on the last Sunday of October next year (02:00-03:00 comes twice)
#
# Monotonic clocks stay real (asyncio's timers need them). PYTHONPYCACHEPREFIX points at an
# empty folder, so every module, ours and third parties', is compiled from source under
# pytest's warning filters, as on a fresh machine with PYTHONDONTWRITEBYTECODE=1.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v faketime >/dev/null || { echo "shifted-clock.sh: faketime is missing (make host-deps)" >&2; exit 1; }

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
    echo "== fast suite with the clock at $at Europe/Oslo, no bytecode cache =="
    TZ=Europe/Oslo FAKETIME_DONT_FAKE_MONOTONIC=1 PYTHONDONTWRITEBYTECODE=1 \
        PYTHONPYCACHEPREFIX="$cache" faketime "$at" \
        .venv/bin/pytest -q -p no:cacheprovider -m "not asterisk and not postgres" "$@" || status=1
    rm -rf "$cache"
done
exit $status
