#!/usr/bin/env bash
# Local PostgreSQL 15 for the integration tests: install, start, create the test role
# and database, then print ONE line to stdout:
#   TELEVIKAR_TEST_PG_URL=postgresql+asyncpg://televikar_test:PASS@127.0.0.1:PORT/televikar_test
# Everything else goes to stderr. Idempotent; needs root (Debian 12 ships PostgreSQL 15).
# The role's password is generated once and kept in $STATE_DIR/pg-password (mode 600).
set -euo pipefail

PG_VERSION=15
PG_CLUSTER=main
ROLE=televikar_test
DATABASE=televikar_test
STATE_DIR=/var/lib/televikar-pbx-test
PASSWORD_FILE="$STATE_DIR/pg-password"
CONF_FILE="/etc/postgresql/$PG_VERSION/$PG_CLUSTER/conf.d/televikar-test.conf"

exec 3>&1 1>&2 # fd 3 is the one line for the caller; all chatter goes to stderr

die() {
    echo "postgres.sh: $*" >&2
    exit 1
}
trap 'die "failed (exit $?) at line $LINENO: $BASH_COMMAND"' ERR

[[ $(id -u) -eq 0 ]] || die "must run as root"

# Anything that may start the server (pg_ctlcluster, the package's postinst) runs with
# stdin/stdout/stderr on a log file and every other descriptor closed: the postmaster
# inherits open files, and holding the caller's pipe would make `$(bash postgres.sh)`
# wait for the server to exit.
quiet() {
    local log status=0
    log=$(mktemp)
    (
        for fd in /proc/"$BASHPID"/fd/*; do
            fd=${fd##*/}
            if ((fd > 2)); then eval "exec $fd>&-"; fi
        done
        exec "$@"
    ) </dev/null >"$log" 2>&1 || status=$?
    cat "$log" >&2
    rm -f "$log"
    return "$status"
}

psql_admin() {
    runuser -u postgres -- psql --no-psqlrc -v ON_ERROR_STOP=1 -qAt -p "$PORT" "$@"
}

# 1. Packages (a fresh index only if the cached one fails us).
if ! command -v pg_ctlcluster >/dev/null || [[ ! -x /usr/lib/postgresql/$PG_VERSION/bin/postgres ]]; then
    export DEBIAN_FRONTEND=noninteractive
    if ! quiet apt-get install -y -q "postgresql-$PG_VERSION" postgresql-client-common; then
        quiet apt-get update -q || die "apt-get update failed"
        quiet apt-get install -y -q "postgresql-$PG_VERSION" postgresql-client-common ||
            die "cannot install postgresql-$PG_VERSION"
    fi
fi

# 2. Cluster: exists, listens on IPv4 loopback only, running.
if ! pg_lsclusters -h | awk -v v="$PG_VERSION" -v c="$PG_CLUSTER" '$1==v && $2==c {f=1} END {exit !f}'; then
    quiet pg_createcluster "$PG_VERSION" "$PG_CLUSTER" || die "pg_createcluster $PG_VERSION $PG_CLUSTER failed"
fi
# Debian's default is 'localhost' (127.0.0.1 and ::1); tests reach it on 127.0.0.1 only.
want_conf="listen_addresses = '127.0.0.1'"
conf_changed=0
if [[ ! -f $CONF_FILE ]] || [[ $(cat "$CONF_FILE") != "$want_conf" ]]; then
    echo "$want_conf" >"$CONF_FILE"
    conf_changed=1
fi
read -r _ _ PORT status _ < <(pg_lsclusters -h | awk -v v="$PG_VERSION" -v c="$PG_CLUSTER" '$1==v && $2==c')
if [[ $status == online* ]]; then
    if [[ $conf_changed -eq 1 ]]; then
        quiet pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" restart || die "cannot restart cluster $PG_VERSION/$PG_CLUSTER"
    fi
else
    quiet pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" start ||
        die "cannot start cluster $PG_VERSION/$PG_CLUSTER (see /var/log/postgresql/postgresql-$PG_VERSION-$PG_CLUSTER.log)"
fi
for _ in $(seq 1 60); do
    pg_isready -q -h 127.0.0.1 -p "$PORT" && break
    sleep 0.5
done
pg_isready -q -h 127.0.0.1 -p "$PORT" || die "PostgreSQL does not answer on 127.0.0.1:$PORT"
listen=$(psql_admin -c 'SHOW listen_addresses')
[[ $listen == "127.0.0.1" ]] || die "listen_addresses is '$listen', expected '127.0.0.1'"

# 3. Password: generated once, reused.
install -d -m 700 "$STATE_DIR"
if [[ ! -s $PASSWORD_FILE ]]; then
    (umask 077 && openssl rand -hex 24 >"$PASSWORD_FILE") || die "cannot write $PASSWORD_FILE"
fi
chmod 600 "$PASSWORD_FILE"
PASSWORD=$(tr -d '[:space:]' <"$PASSWORD_FILE")
[[ $PASSWORD =~ ^[0-9a-f]{16,}$ ]] || die "$PASSWORD_FILE does not hold a hex password; delete it to regenerate"

# 4. Role (CREATEDB: tests create one database per run) and its database.
psql_admin -v role="$ROLE" -v pw="$PASSWORD" -v db="$DATABASE" <<'SQL' || die "cannot create role/database"
SELECT format('CREATE ROLE %I', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
ALTER ROLE :"role" WITH LOGIN CREATEDB NOSUPERUSER PASSWORD :'pw';
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
SQL

PGPASSWORD="$PASSWORD" psql --no-psqlrc -qAt -h 127.0.0.1 -p "$PORT" -U "$ROLE" -d "$DATABASE" \
    -c 'SELECT 1' >/dev/null || die "cannot log in as $ROLE on 127.0.0.1:$PORT"

echo "TELEVIKAR_TEST_PG_URL=postgresql+asyncpg://$ROLE:$PASSWORD@127.0.0.1:$PORT/$DATABASE" >&3
