#!/usr/bin/env bash
# Embedded Asterisk lab for televikar-pbx: Asterisk 22 from Debian sid in a
# debootstrap root (cached outside the checkout), run with chroot on the host's
# loopback. See asterisk/README.md.
#
# Usage: lab.sh provision|start|stop|status|env-file
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR
readonly CONF_SRC="$SCRIPT_DIR/conf"

LAB_DIR="${TELEVIKAR_LAB_DIR:-/var/cache/televikar-pbx/lab}"
[[ $LAB_DIR == /* ]] || LAB_DIR="$PWD/$LAB_DIR"
readonly LAB_DIR
readonly ROOT="$LAB_DIR/root"
readonly CREDENTIALS="$LAB_DIR/credentials"
readonly ENV_FILE="$LAB_DIR/televikar.env"
readonly PID_FILE="$LAB_DIR/asterisk.pid"
readonly OUT_FILE="$LAB_DIR/asterisk.out"
# The modules.conf (and pid) Asterisk was started with: 'core reload' loads no module
# that a changed modules.conf adds, so a change means a restart (cmd_start).
readonly MODULES_STARTED="$LAB_DIR/modules.conf.started"
readonly DEBOOTSTRAP_LOG="$LAB_DIR/debootstrap.log"
readonly APT_LOG="$LAB_DIR/apt-host.log"
# Inside the root: the app's prompts (sound:televikar/NAME, made by prompts.sh)
# and where ARI recordings land (POST /channels/{id}/record name=X -> X.wav).
readonly SOUNDS_DIR="$ROOT/usr/share/asterisk/sounds/televikar"
readonly RECORDING_DIR="$ROOT/var/spool/asterisk/recording"

# What the root is built from. Changing any of these rebuilds the root.
readonly SUITE=sid
readonly VARIANT=minbase
readonly PACKAGES=asterisk,asterisk-modules,asterisk-core-sounds-en-wav,asterisk-moh-opsound-wav
readonly STAMP_NAME=.televikar-lab-stamp

readonly ARI_BASE=http://127.0.0.1:8088
readonly START_TIMEOUT="${TELEVIKAR_LAB_START_TIMEOUT:-60}"
readonly ARI_USER=televikar
readonly AMI_USER=televikar

die() {
    echo "lab: $*" >&2
    exit 1
}

require_root() {
    [[ $(id -u) -eq 0 ]] || die "must run as root"
}

# Serialise provision/start/stop (a test fixture and a developer may race).
take_lock() {
    mkdir -p "$LAB_DIR"
    exec 9>"$LAB_DIR/.lock"
    flock -w 900 9 || die "another lab.sh holds $LAB_DIR/.lock"
}

stamp_text() {
    printf 'suite=%s\nvariant=%s\ninclude=%s\n' "$SUITE" "$VARIANT" "$PACKAGES"
}

# --- Debian archive -----------------------------------------------------------

# The main Debian archive the host's apt uses (not -security); the lab root is
# built from the same mirror. TELEVIKAR_LAB_MIRROR overrides.
detect_mirror() {
    if [[ -n ${TELEVIKAR_LAB_MIRROR:-} ]]; then
        echo "${TELEVIKAR_LAB_MIRROR%/}"
        return
    fi
    local uri="" f codename
    # Only the host's own Debian archive: third-party repositories (their suites are
    # not the host's codename) cannot bootstrap Debian.
    # shellcheck source=/dev/null
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
    local -a one_line=() deb822=()
    [[ -f /etc/apt/sources.list ]] && one_line+=(/etc/apt/sources.list)
    for f in /etc/apt/sources.list.d/*.list; do [[ -f $f ]] && one_line+=("$f"); done
    for f in /etc/apt/sources.list.d/*.sources; do [[ -f $f ]] && deb822+=("$f"); done
    if ((${#one_line[@]})); then
        uri=$(awk -v codename="$codename" '
            $1 == "deb" {
                i = 2
                if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
                if ($i !~ /security/ && $(i + 1) == codename) { print $i; exit }
            }' "${one_line[@]}")
    fi
    if [[ -z $uri ]] && ((${#deb822[@]})); then
        uri=$(awk -v codename="$codename" '
            BEGIN { RS = ""; FS = "\n" }
            {
                types = ""; uris = ""; suites = ""; enabled = "yes"
                for (n = 1; n <= NF; n++) {
                    line = $n
                    if (line ~ /^[ \t]*#/) continue
                    if (match(line, /^[A-Za-z-]+:/)) {
                        key = tolower(substr(line, 1, RLENGTH - 1))
                        val = substr(line, RLENGTH + 1)
                        gsub(/^[ \t]+|[ \t]+$/, "", val)
                        if (key == "types") types = val
                        else if (key == "uris") uris = val
                        else if (key == "suites") suites = val
                        else if (key == "enabled") enabled = tolower(val)
                    }
                }
                if (enabled == "no" || (" " types " ") !~ / deb /) next
                if (uris ~ /security/ || suites ~ /-security/) next
                if ((" " suites " ") !~ (" " codename " ")) next
                split(uris, u, /[ \t]+/)
                if (u[1] != "") { print u[1]; exit }
            }' "${deb822[@]}")
    fi
    [[ -n $uri ]] || return 1
    echo "${uri%/}"
}

# --- host packages --------------------------------------------------------------

ensure_host_packages() {
    local -a missing=()
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    command -v sipp >/dev/null || missing+=(sip-tester)
    command -v curl >/dev/null || missing+=(curl)
    command -v ss >/dev/null || missing+=(iproute2)
    # For prompts.sh (it installs them itself when run alone).
    command -v espeak-ng >/dev/null || missing+=(espeak-ng)
    command -v sox >/dev/null || missing+=(sox)
    ((${#missing[@]})) || return 0
    echo "lab: installing ${missing[*]} on the host (log: $APT_LOG)" >&2
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y --no-install-recommends "${missing[@]}" >"$APT_LOG" 2>&1; then
        # A fresh machine may have no package lists yet.
        { apt-get update && apt-get install -y --no-install-recommends "${missing[@]}"; } \
            >>"$APT_LOG" 2>&1 || die "apt-get install ${missing[*]} failed (log: $APT_LOG)"
    fi
}

# --- the root -------------------------------------------------------------------

# Mount points (from /proc/self/mounts) at or below $1, deepest first.
mounts_under() {
    awk -v p="$1" '$2 == p || index($2, p "/") == 1 { print $2 }' /proc/self/mounts | sort -r
}

# rm -rf a (half) root, but never through a bind mount of the host's /dev.
remove_tree() {
    local dir=$1 m
    [[ -e $dir ]] || return 0
    while read -r m; do
        [[ -n $m ]] && { umount "$m" 2>/dev/null || umount -l "$m"; }
    done < <(mounts_under "$dir")
    [[ -z $(mounts_under "$dir") ]] || die "refusing to delete $dir: something is still mounted below it"
    rm -rf --one-file-system "$dir"
}

root_is_current() {
    [[ -x $ROOT/usr/sbin/asterisk && -f $ROOT/$STAMP_NAME ]] &&
        [[ "$(cat "$ROOT/$STAMP_NAME")" == "$(stamp_text)" ]]
}

build_root() {
    local mirror tmp old d
    mirror=$(detect_mirror) ||
        die "no Debian archive found in /etc/apt/sources.list{,.d/*.sources}; set TELEVIKAR_LAB_MIRROR"
    curl -fsS --max-time 20 -o /dev/null "$mirror/dists/$SUITE/InRelease" 2>/dev/null ||
        die "cannot reach the Debian archive $mirror (dists/$SUITE); no network? (TELEVIKAR_LAB_MIRROR overrides)"

    # Leftovers of an interrupted build.
    for d in "$LAB_DIR"/root.build.* "$LAB_DIR"/root.old.*; do
        [[ -e $d ]] && remove_tree "$d"
    done

    tmp=$(mktemp -d "$LAB_DIR/root.build.XXXXXX")
    chmod 755 "$tmp"
    echo "lab: building the Asterisk root from Debian $SUITE, takes a minute or two (log: $DEBOOTSTRAP_LOG)" >&2
    local t0=$SECONDS
    if ! debootstrap --variant="$VARIANT" --include="$PACKAGES" "$SUITE" "$tmp" "$mirror" \
        >"$DEBOOTSTRAP_LOG" 2>&1; then
        remove_tree "$tmp"
        local missing
        missing=$(sed -n "s/^E: Couldn't find these debs: *//p" "$DEBOOTSTRAP_LOG" | head -n1)
        [[ -z $missing ]] || die "package(s) not in Debian $SUITE: $missing (log: $DEBOOTSTRAP_LOG)"
        die "debootstrap failed: $(grep -m1 '^E: ' "$DEBOOTSTRAP_LOG" || echo 'see log') (log: $DEBOOTSTRAP_LOG)"
    fi
    [[ -x $tmp/usr/sbin/asterisk ]] || {
        remove_tree "$tmp"
        die "debootstrap finished but $SUITE's asterisk package has no /usr/sbin/asterisk (log: $DEBOOTSTRAP_LOG)"
    }
    stamp_text >"$tmp/$STAMP_NAME"

    # Swap in with renames, so a complete root is always either old or new.
    old=""
    if [[ -e $ROOT ]]; then
        old="$LAB_DIR/root.old.$$"
        mv "$ROOT" "$old"
    fi
    mv "$tmp" "$ROOT"
    [[ -z $old ]] || remove_tree "$old"
    echo "lab: root built in $((SECONDS - t0)) s: $ROOT" >&2
}

ensure_root() {
    root_is_current && return 0
    # A root in use must be stopped before it is replaced.
    if [[ -n $(lab_pids) ]]; then
        stop_asterisk
    fi
    build_root
}

# --- credentials and configuration -------------------------------------------------

gen_secret() {
    # 18 random bytes -> 24 base64url characters, no padding.
    head -c 18 /dev/urandom | base64 | tr '+/' '-_'
}

ARI_PASSWORD=""
AMI_PASSWORD=""
# Digest password of the lab agent phone agent9 (pjsip.conf).
AGENT9_PASSWORD=""
# The desk web app's signing secret (TELEVIKAR_WEB_SECRET, at least 32 characters).
WEB_SECRET=""

load_credentials() {
    local k v
    ARI_PASSWORD=""
    AMI_PASSWORD=""
    AGENT9_PASSWORD=""
    WEB_SECRET=""
    [[ -f $CREDENTIALS ]] || return 0
    while IFS='=' read -r k v; do
        case $k in
        ARI_PASSWORD) ARI_PASSWORD=$v ;;
        AMI_PASSWORD) AMI_PASSWORD=$v ;;
        AGENT9_PASSWORD) AGENT9_PASSWORD=$v ;;
        WEB_SECRET) WEB_SECRET=$v ;;
        esac
    done <"$CREDENTIALS"
}

# Generate what is missing, keep what exists (a lab provisioned before agent9
# existed keeps its ARI/AMI passwords and only gains the new one).
ensure_credentials() {
    load_credentials
    [[ -n $ARI_PASSWORD && -n $AMI_PASSWORD && -n $AGENT9_PASSWORD && -n $WEB_SECRET ]] &&
        return 0
    [[ -n $ARI_PASSWORD ]] || ARI_PASSWORD=$(gen_secret)
    [[ -n $AMI_PASSWORD ]] || AMI_PASSWORD=$(gen_secret)
    [[ -n $AGENT9_PASSWORD ]] || AGENT9_PASSWORD=$(gen_secret)
    [[ -n $WEB_SECRET ]] || WEB_SECRET=$(gen_secret)$(gen_secret) # 48 characters
    (
        umask 077
        printf 'ARI_USER=%s\nARI_PASSWORD=%s\nAMI_USER=%s\nAMI_PASSWORD=%s\nAGENT9_PASSWORD=%s\nWEB_SECRET=%s\n' \
            "$ARI_USER" "$ARI_PASSWORD" "$AMI_USER" "$AMI_PASSWORD" "$AGENT9_PASSWORD" "$WEB_SECRET" \
            >"$CREDENTIALS.tmp"
        mv "$CREDENTIALS.tmp" "$CREDENTIALS"
    )
}

install_config() {
    local etc="$ROOT/etc/asterisk"
    [[ -d $CONF_SRC ]] || die "no configuration at $CONF_SRC"
    mkdir -p "$etc"
    find "$etc" -mindepth 1 -delete
    cp "$CONF_SRC"/*.conf "$etc/"
    (
        umask 077
        cat >"$etc/ari_users.conf" <<EOF
; Generated by asterisk/lab.sh from $CREDENTIALS - do not edit.
[$ARI_USER]
type = user
read_only = no
password_format = plain
password = $ARI_PASSWORD
EOF
        cat >"$etc/manager_users.conf" <<EOF
; Generated by asterisk/lab.sh from $CREDENTIALS - do not edit.
; Permissions and ACL: the template televikar-ami in manager.conf.
[$AMI_USER](televikar-ami)
secret = $AMI_PASSWORD
EOF
        # Included by pjsip.conf: the digest credentials of the lab agent phone.
        cat >"$etc/pjsip_lab_auth.conf" <<EOF
; Generated by asterisk/lab.sh from $CREDENTIALS - do not edit.
[agent9-auth]
type = auth
auth_type = userpass
username = agent9
password = $AGENT9_PASSWORD
EOF
        cat >"$ENV_FILE" <<EOF
TELEVIKAR_ARI_URL=$ARI_BASE/
TELEVIKAR_ARI_USER=$ARI_USER
TELEVIKAR_ARI_PASSWORD=$ARI_PASSWORD
TELEVIKAR_AMI_HOST=127.0.0.1
TELEVIKAR_AMI_PORT=5038
TELEVIKAR_AMI_USER=$AMI_USER
TELEVIKAR_AMI_PASSWORD=$AMI_PASSWORD
TELEVIKAR_LAB_ROOT=$ROOT
TELEVIKAR_LAB_CDR_FILE=$ROOT/var/log/asterisk/cdr-custom/Master.csv
TELEVIKAR_CDR_FILE=$ROOT/var/log/asterisk/cdr-custom/Master.csv
TELEVIKAR_LAB_SOUNDS_DIR=$SOUNDS_DIR
TELEVIKAR_LAB_RECORDING_DIR=$RECORDING_DIR
TELEVIKAR_RECORDING_SPOOL=$RECORDING_DIR
TELEVIKAR_ASTERISK_CONF_DIR=$ROOT/etc/asterisk
TELEVIKAR_LAB_AGENT9_PASSWORD=$AGENT9_PASSWORD
TELEVIKAR_WEB_SECRET=$WEB_SECRET
EOF
    )
    # Name resolution inside the root never leaves the machine: PJSIP resolves
    # the host name at startup (pj_gethostip), and debootstrap leaves no
    # /etc/hosts. No nameserver line = glibc tries 127.0.0.1:53, fails at once.
    printf '127.0.0.1\tlocalhost %s\n::1\tlocalhost ip6-localhost ip6-loopback\n' \
        "$(hostname)" >"$ROOT/etc/hosts"
    printf '# televikar lab: no DNS inside the Asterisk root\noptions timeout:1 attempts:1\n' \
        >"$ROOT/etc/resolv.conf"
    mkdir -p "$ROOT/var/log/asterisk/cdr-custom" "$ROOT/run/asterisk"
    # res_stasis_recording writes here and does not create the directory: without
    # it POST /channels/{id}/record fails.
    mkdir -p "$RECORDING_DIR"
    # Message capture in the dialplan while the app is down (extensions.conf).
    mkdir -p "$RECORDING_DIR/fallback"
}

# The app's Norwegian prompts, regenerated only when asterisk/prompts.txt changed.
install_prompts() {
    bash "$SCRIPT_DIR/prompts.sh" "$SOUNDS_DIR" >&2 || die "prompts.sh failed"
}

provision() {
    ensure_host_packages
    ensure_root
    ensure_credentials
    install_config
    install_prompts
}

# --- the Asterisk process ------------------------------------------------------------

# PIDs of all processes whose root directory is the lab root (all started by us).
lab_pids() {
    local p r
    for p in /proc/[0-9]*; do
        r=$(readlink "$p/root" 2>/dev/null) || continue
        [[ $r == "$ROOT" ]] && echo "${p#/proc/}"
    done
    return 0
}

# PID of the running lab Asterisk, or nothing.
asterisk_pid() {
    local pid=""
    [[ -f $PID_FILE ]] && pid=$(<"$PID_FILE")
    if [[ $pid =~ ^[0-9]+$ && $(readlink "/proc/$pid/root" 2>/dev/null) == "$ROOT" ]]; then
        echo "$pid"
        return 0
    fi
    local p
    for p in $(lab_pids); do
        if [[ $(cat "/proc/$p/comm" 2>/dev/null) == asterisk ]] &&
            tr '\0' ' ' <"/proc/$p/cmdline" | grep -q -- ' -f'; then
            echo "$p"
            return 0
        fi
    done
    return 0
}

ari_ok() {
    # Credentials via stdin config, not argv (visible in ps).
    curl -fsS --max-time 2 -o /dev/null -K - "$ARI_BASE/ari/asterisk/info" 2>/dev/null \
        <<<"user = \"$ARI_USER:$ARI_PASSWORD\""
}

show_log_tail() {
    local f
    for f in "$OUT_FILE" "$ROOT/var/log/asterisk/messages.log"; do
        [[ -s $f ]] || continue
        echo "--- last 20 lines of $f ---" >&2
        tail -n 20 "$f" >&2
    done
}

check_ports_free() {
    local busy
    busy=$(ss -Hlnup 'sport = :5060' 2>/dev/null; ss -Hlntp '( sport = :8088 or sport = :5038 )' 2>/dev/null)
    [[ -z $busy ]] && return 0
    die "ports already in use (SIP 5060/udp, HTTP 8088, AMI 5038): $(echo "$busy" | awk '{print $4, $NF}' | paste -sd ';' | sed 's/;/; /g')"
}

mount_root() {
    mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
    mountpoint -q "$ROOT/dev" || mount --bind /dev "$ROOT/dev"
}

umount_root() {
    local m
    for m in "$ROOT/dev" "$ROOT/proc"; do
        if mountpoint -q "$m"; then
            umount "$m" 2>/dev/null || umount -l "$m"
        fi
    done
}

stop_asterisk() {
    local -a pids
    mapfile -t pids < <({ asterisk_pid; lab_pids; } | sort -u)
    if ((${#pids[@]})); then
        timeout 10 chroot "$ROOT" /usr/sbin/asterisk -rx 'core stop now' >/dev/null 2>&1 || true
        wait_gone 10 "${pids[@]}" || {
            kill -TERM "${pids[@]}" 2>/dev/null || true
            wait_gone 5 "${pids[@]}" || {
                kill -KILL "${pids[@]}" 2>/dev/null || true
                wait_gone 5 "${pids[@]}" || die "processes ${pids[*]} survive SIGKILL"
            }
        }
    fi
    rm -f "$PID_FILE"
    umount_root
}

# wait_gone SECONDS PID...: true once none of the PIDs runs any more.
wait_gone() {
    local limit=$1 p alive
    shift
    local deadline=$((SECONDS + limit))
    while :; do
        alive=0
        for p in "$@"; do
            kill -0 "$p" 2>/dev/null && alive=1
        done
        ((alive)) || return 0
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
}

start_asterisk() {
    check_ports_free
    mount_root
    : >"$OUT_FILE"
    # fd 9 (the lab lock) must not leak into Asterisk, or the lock lives as long as it;
    # nor fd 8, the lock /work/bin/lab-tests holds while it runs this script (seen: an
    # Asterisk started from lab-tests kept every later lab-tests waiting).
    setsid nohup chroot "$ROOT" /usr/sbin/asterisk -f </dev/null >>"$OUT_FILE" 2>&1 8>&- 9>&- &
    local pid=$!
    echo "$pid" >"$PID_FILE"
    local deadline=$((SECONDS + START_TIMEOUT))
    until ari_ok; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$PID_FILE"
            umount_root
            echo "lab: Asterisk exited during startup (log: $OUT_FILE)" >&2
            show_log_tail
            exit 1
        fi
        if ((SECONDS >= deadline)); then
            echo "lab: ARI did not answer on $ARI_BASE within ${START_TIMEOUT} s (log: $OUT_FILE)" >&2
            show_log_tail
            stop_asterisk
            exit 1
        fi
        sleep 0.2
    done
    # setsid execs in place unless it is a process group leader; make sure the
    # pid file names Asterisk itself.
    [[ $(readlink "/proc/$pid/root" 2>/dev/null) == "$ROOT" ]] || asterisk_pid >"$PID_FILE"
    cp "$ROOT/etc/asterisk/modules.conf" "$MODULES_STARTED"
    cp "$PID_FILE" "$MODULES_STARTED.pid"
}

# True when the running Asterisk was started (by this script) with today's modules.conf.
modules_unchanged() {
    cmp -s "$ROOT/etc/asterisk/modules.conf" "$MODULES_STARTED" &&
        [[ $(cat "$MODULES_STARTED.pid" 2>/dev/null) == "$(asterisk_pid)" ]]
}

reload_asterisk() {
    chroot "$ROOT" /usr/sbin/asterisk -rx 'core reload' >/dev/null ||
        die "'core reload' failed (log: $OUT_FILE)"
    local deadline=$((SECONDS + 15))
    until ari_ok; do
        ((SECONDS < deadline)) || die "ARI stopped answering after reload (log: $OUT_FILE)"
        sleep 0.2
    done
}

# --- commands ---------------------------------------------------------------------

cmd_provision() {
    require_root
    take_lock
    provision
    echo "lab: provisioned $ROOT (env: $ENV_FILE)"
}

cmd_start() {
    require_root
    take_lock
    provision
    local pid
    pid=$(asterisk_pid)
    if [[ -n $pid ]]; then
        if ari_ok && modules_unchanged; then
            reload_asterisk
            echo "lab: already running (pid $pid), configuration reloaded"
            return 0
        fi
        ari_ok && echo "lab: modules.conf is not the one Asterisk started with: restarting"
        # Running but not answering (hung, or half started): start over.
        stop_asterisk
    fi
    start_asterisk
    echo "lab: Asterisk running (pid $(<"$PID_FILE")), ARI $ARI_BASE/, env $ENV_FILE"
}

cmd_stop() {
    require_root
    take_lock
    stop_asterisk
    echo "lab: stopped"
}

cmd_status() {
    local pid
    pid=$(asterisk_pid)
    if [[ -z $pid ]]; then
        echo "lab: stopped (root $ROOT)"
        exit 3
    fi
    load_credentials
    if ari_ok; then
        echo "lab: running (pid $pid), ARI answers on $ARI_BASE/"
    else
        echo "lab: running (pid $pid), ARI NOT answering on $ARI_BASE/"
        exit 1
    fi
}

cmd_env_file() {
    [[ -f $ENV_FILE ]] || die "not provisioned yet ($ENV_FILE missing): run lab.sh provision"
    echo "$ENV_FILE"
}

main() {
    case "${1:-}" in
    provision) cmd_provision ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    env-file) cmd_env_file ;;
    *)
        echo "usage: $0 provision|start|stop|status|env-file" >&2
        exit 2
        ;;
    esac
}

main "$@"
