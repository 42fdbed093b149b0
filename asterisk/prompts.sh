#!/usr/bin/env bash
# Generate the Norwegian (bokmål) voice prompts of televikar-pbx from
# asterisk/prompts.txt with espeak-ng and sox: one NAME.wav per line, 8 kHz mono
# 16-bit PCM (what Asterisk plays without transcoding), so the app plays it as
# sound:televikar/NAME.
#
# Usage: prompts.sh [TARGET_DIR]
#   TARGET_DIR  default: the lab root's /usr/share/asterisk/sounds/televikar
#               ($TELEVIKAR_LAB_DIR/root/..., lab dir as in lab.sh)
#
# Idempotent: a prompt is regenerated only when its text (or the voice/effect
# settings below) changed; .NAME.sha256 next to the file records what it was made
# from. Prompts removed from the manifest are deleted (only files that carry such
# a stamp, i.e. that this script made). Installs espeak-ng and sox when missing
# (needs root then).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR
readonly MANIFEST="${TELEVIKAR_PROMPTS_MANIFEST:-$SCRIPT_DIR/prompts.txt}"

LAB_DIR="${TELEVIKAR_LAB_DIR:-/var/cache/televikar-pbx/lab}"
[[ $LAB_DIR == /* ]] || LAB_DIR="$PWD/$LAB_DIR"
TARGET="${1:-$LAB_DIR/root/usr/share/asterisk/sounds/televikar}"
[[ $TARGET == /* ]] || TARGET="$PWD/$TARGET"
readonly LAB_DIR TARGET

# Voice and post-processing. Part of every prompt's hash: changing them
# regenerates all prompts.
readonly VOICE=nb
readonly SPEED=160 # words per minute (espeak-ng default 175 is hurried on the phone)
# espeak-ng writes 22.05 kHz; trim its leading/trailing silence, resample to
# 8 kHz, normalise to -3 dBFS, then 0.2 s of silence at both ends (the start of
# the media stream is easily clipped, and the beep should not follow too fast).
readonly -a SOX_EFFECTS=(
    silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse
    rate -h 8000 gain -n -3 pad 0.2 0.2
)
readonly -a SOX_OUT=(-t wav -r 8000 -c 1 -b 16 -e signed-integer)

die() {
    echo "prompts: $*" >&2
    exit 1
}

ensure_tools() {
    local -a missing=()
    command -v espeak-ng >/dev/null || missing+=(espeak-ng)
    command -v sox >/dev/null || missing+=(sox)
    ((${#missing[@]})) || return 0
    [[ $(id -u) -eq 0 ]] || die "${missing[*]} missing; install as root: apt-get install ${missing[*]}"
    local log
    log=$(mktemp /tmp/televikar-prompts-apt.XXXXXX)
    echo "prompts: installing ${missing[*]} on the host (log: $log)" >&2
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y --no-install-recommends "${missing[@]}" >"$log" 2>&1; then
        # A fresh machine may have no package lists yet.
        { apt-get update && apt-get install -y --no-install-recommends "${missing[@]}"; } \
            >>"$log" 2>&1 || die "apt-get install ${missing[*]} failed (log: $log)"
    fi
    rm -f "$log"
}

trim() {
    sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' <<<"$1"
}

# What a prompt is made from; its sha256 is the stamp.
recipe() {
    printf 'voice=%s\nspeed=%s\neffects=%s\nout=%s\ntext=%s\n' \
        "$VOICE" "$SPEED" "${SOX_EFFECTS[*]}" "${SOX_OUT[*]}" "$1"
}

# NAME TEXT -> $TARGET/NAME.wav, atomically (temporary file + rename).
render() {
    local name=$1 text=$2 txt raw out
    txt="$TARGET/.$name.tmp.$$.txt"
    raw="$TARGET/.$name.tmp.$$.raw.wav"
    out="$TARGET/.$name.tmp.$$.wav"
    printf '%s\n' "$text" >"$txt"
    # -b 1: the text file is UTF-8 (æ, ø, å).
    espeak-ng -v "$VOICE" -s "$SPEED" -b 1 -f "$txt" -w "$raw" ||
        die "espeak-ng failed for '$name'"
    sox "$raw" "${SOX_OUT[@]}" "$out" "${SOX_EFFECTS[@]}" ||
        die "sox failed for '$name'"
    chmod 644 "$out"
    mv -f "$out" "$TARGET/$name.wav"
    rm -f "$txt" "$raw"
}

main() {
    [[ -f $MANIFEST ]] || die "no manifest at $MANIFEST"
    ensure_tools
    mkdir -p "$TARGET"
    chmod 755 "$TARGET"
    # Two runs at once (a test fixture and a developer) queue here.
    exec 8>"$TARGET/.lock"
    flock -w 120 8 || die "another prompts.sh holds $TARGET/.lock"
    trap 'rm -f "$TARGET"/.*.tmp.$$.*' EXIT

    local line name text hash n=0 made=0 kept=0 removed=0
    local -A seen=()
    while IFS= read -r line || [[ -n $line ]]; do
        n=$((n + 1))
        line=${line%$'\r'}
        [[ $line =~ ^[[:space:]]*(#|$) ]] && continue
        [[ $line == *'|'* ]] || die "$MANIFEST:$n: expected NAME|TEXT"
        name=${line%%|*}
        text=${line#*|}
        name=$(trim "$name")
        text=$(trim "$text")
        [[ $name =~ ^[a-z0-9][a-z0-9-]*$ ]] || die "$MANIFEST:$n: bad prompt name '$name' (use [a-z0-9-])"
        [[ -n $text ]] || die "$MANIFEST:$n: empty text for '$name'"
        [[ -z ${seen[$name]:-} ]] || die "$MANIFEST:$n: '$name' defined twice"
        seen[$name]=1

        hash=$(recipe "$text" | sha256sum | cut -d' ' -f1)
        if [[ -s $TARGET/$name.wav && -f $TARGET/.$name.sha256 &&
            $(<"$TARGET/.$name.sha256") == "$hash" ]]; then
            kept=$((kept + 1))
            continue
        fi
        render "$name" "$text"
        echo "$hash" >"$TARGET/.$name.sha256"
        made=$((made + 1))
    done <"$MANIFEST"
    ((${#seen[@]})) || die "$MANIFEST lists no prompts"

    # Prompts that left the manifest (only our own: those with a stamp).
    local stamp
    for stamp in "$TARGET"/.*.sha256; do
        [[ -f $stamp ]] || continue
        name=${stamp##*/.}
        name=${name%.sha256}
        [[ -n ${seen[$name]:-} ]] && continue
        rm -f "$TARGET/$name.wav" "$stamp"
        removed=$((removed + 1))
    done

    echo "prompts: $made generated, $kept unchanged, $removed removed ($TARGET)"
}

main "$@"
