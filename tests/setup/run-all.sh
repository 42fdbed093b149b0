#!/usr/bin/env bash
# `make test`'s run: the whole suite, in two streams at once.
#
#   foreground  the real-Asterisk tests (-m asterisk). They spend most of their time
#               waiting for calls: SIP timers, prompts, ring timeouts, so they use
#               little CPU, but their timing checks (±0.3 s) need it when they do.
#               One process (-n 0), at normal priority.
#   beside it   niced (+10), two processes (-n 2): everything else (unit, SQLite and
#               PostgreSQL integration), then the shifted-clock guard
#               (tests/setup/shifted-clock.sh). CPU-bound, it takes the core time the
#               Asterisk tests leave idle; niced, it yields the CPU whenever Asterisk,
#               sipp or the service under test want it.
#
# The rest's output goes to a log printed after the Asterisk run (so the two do not
# interleave); every part prints its own pytest summary, and the exit status is
# non-zero if any part failed. Run by `make test` with the lab up and
# TELEVIKAR_TEST_PG_URL and TELEVIKAR_ENV_FILE exported.
set -uo pipefail
cd "$(dirname "$0")/../.."

work=$(mktemp -d "${TMPDIR:-/tmp}/televikar-test.XXXXXX")
cleanup() {
    [[ -n ${beside:-} ]] && kill -- "$beside" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

(
    # Its own temporary folder and no cache writes: two pytest sessions share nothing.
    nice -n 10 .venv/bin/pytest -ra -p no:cacheprovider -n 2 --basetemp="$work/rest" \
        -m "not asterisk" >"$work/rest.log" 2>&1
    echo $? >"$work/rest.rc"
    nice -n 10 bash tests/setup/shifted-clock.sh -n 2 --basetemp="$work/guard" \
        >"$work/guard.log" 2>&1
    echo $? >"$work/guard.rc"
) &
beside=$!

started=$SECONDS
echo "== the real-Asterisk tests; beside them, niced: the rest, then the shifted-clock guard =="
.venv/bin/pytest -ra -n 0 -m asterisk
asterisk_rc=$?
echo "== the real-Asterisk tests took $((SECONDS - started)) s; waiting for the rest =="

wait "$beside"
beside=
echo "== the rest of the suite (unit, SQLite, PostgreSQL), run beside them =="
cat "$work/rest.log"
echo "== the shifted-clock guard =="
cat "$work/guard.log"
echo "== all parts done after $((SECONDS - started)) s =="

status=0
for rc in "$asterisk_rc" "$(cat "$work/rest.rc" 2>/dev/null || echo 1)" \
    "$(cat "$work/guard.rc" 2>/dev/null || echo 1)"; do
    [[ $rc == 0 ]] || status=1
done
exit $status
