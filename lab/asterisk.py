"""An Asterisk of its own from the lab's Debian root (asterisk/lab.sh builds it), beside
the lab's Asterisk and any other such instance: its own configuration, state, ports and
credentials. The load benchmark (benchmarks/loadbench/asterisk.py) and the cluster lab's
nodes (lab/cluster.py) run this way.

How it is isolated (:func:`command`):

* It runs in a private mount namespace (``unshare --mount``), chrooted into a bind mount
  of the lab root at a path of its own (``mount_point``). /proc and /dev are mounted
  there in that namespace only, so they vanish with the process, whatever happens to
  the harness. Its root is not the lab root's path, so ``lab.sh stop`` (which stops
  every process whose root is the lab root) leaves it alone, and it never stops the
  lab's.
* Everything it reads or writes is under ``/mnt`` in the root, where the instance's
  ``state`` directory is bind-mounted: configuration (``state/etc``), control socket,
  spool, logs, astdb.
* With ``private_writes`` the lab root is also mounted read-only in that namespace, and
  ``state/spool`` and ``state/tmp`` are bind-mounted over ``/var/spool/asterisk`` and
  ``/tmp``: absolute paths in the shared dialplan (the fallback's
  ``/var/spool/asterisk/recording/fallback``) then land in the instance's state too, and
  nothing it does can write into the lab root.

The process chain ``unshare -> sh -> chroot -> asterisk`` execs in place: the pid
:func:`command` starts is Asterisk's.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# The project's Asterisk configuration: the single source for every instance.
LAB_CONF = REPO / "asterisk" / "conf"
LAB_DIR = Path(os.environ.get("TELEVIKAR_LAB_DIR", "/var/cache/televikar-pbx/lab"))
LAB_ROOT = LAB_DIR / "root"
# Directories under ``state`` that start empty on every start.
STATE_DIRS = ("run", "spool", "log", "db", "tmp")


class InstanceError(RuntimeError):
    """An isolated Asterisk (or the lab root it runs from) could not be set up."""


def require_lab_root() -> None:
    if not (LAB_ROOT / "usr/sbin/asterisk").is_file():
        raise InstanceError(f"no Asterisk root at {LAB_ROOT}: run `bash asterisk/lab.sh provision`")


# --- credentials and configuration files ----------------------------------------------


def credentials(path: Path, keys: Sequence[str]) -> dict[str, str]:
    """Random secrets for ``keys``, generated once and kept in ``path`` (0600); a key
    missing from an older file is added, the others are kept."""
    values: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep:
                values[key] = value
    missing = [key for key in keys if not values.get(key)]
    if missing:
        for key in missing:
            values[key] = secrets.token_urlsafe(18)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        write_private(tmp, "".join(f"{k}={v}\n" for k, v in values.items()))
        tmp.replace(path)
    return values


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, readable by its owner only (0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def fill(text: str, values: dict[str, str], what: str) -> str:
    """Replace every ``@KEY@`` of a template; one left unfilled is an error."""
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    left = re.search(r"@[A-Z_]+@", text)
    if left:
        raise InstanceError(f"unfilled placeholder {left.group(0)} in {what}")
    return text


_SECTION = re.compile(r"^\[([^\]]+)\]")
_OPTION = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*=>?")


def set_option(text: str, section: str, key: str, value: str, *, add: bool = False) -> str:
    """An Asterisk .conf ``text`` with ``key = value`` in every ``[section]`` (by name,
    templates and all) that has ``key``. Where none has it: with ``add``, the line is
    added to the first section of that name (or a new section at the end), otherwise
    :class:`InstanceError` (a renamed option must not be overridden silently)."""
    lines = text.splitlines()
    current: str | None = None
    first_header: int | None = None
    found = False
    for i, line in enumerate(lines):
        header = _SECTION.match(line)
        if header:
            current = header.group(1)
            if current == section and first_header is None:
                first_header = i
            continue
        option = _OPTION.match(line)
        if current == section and option and option.group(1) == key:
            lines[i] = f"{key} = {value}"
            found = True
    if not found:
        if not add:
            raise InstanceError(f"no option {key} in [{section}] to override")
        if first_header is None:
            lines += ["", f"[{section}]", f"{key} = {value}"]
        else:
            lines.insert(first_header + 1, f"{key} = {value}")
    return "\n".join(lines) + "\n"


def remove_sections(text: str, names: Sequence[str]) -> str:
    """An Asterisk .conf ``text`` without the sections named ``names`` (every section of
    such a name: ``[agent1](agent-endpoint)`` and ``[agent1](agent-aor)`` alike). A
    section ends at the next header or at a comment line, which belongs to what follows."""
    kept: list[str] = []
    dropping = False
    for line in text.splitlines():
        header = _SECTION.match(line)
        if header:
            dropping = header.group(1) in names
        elif line.lstrip().startswith(";"):
            dropping = False
        if not dropping:
            kept.append(line)
    return "\n".join(kept) + "\n"


def copy_conf(etc: Path, names: Sequence[str] | None = None) -> None:
    """A fresh ``etc`` with the project's configuration files (all, or ``names``)."""
    if etc.exists():
        shutil.rmtree(etc)
    etc.mkdir(parents=True)
    sources = [LAB_CONF / n for n in names] if names else sorted(LAB_CONF.glob("*.conf"))
    for source in sources:
        shutil.copyfile(source, etc / source.name)


# --- the process ------------------------------------------------------------------------

# Runs as: sh -c SCRIPT sh LAB_ROOT MOUNT_POINT STATE PRIVATE, inside `unshare --mount`.
_START_SCRIPT = """set -e
mount --bind "$1" "$2"
if [ "$4" = private ]; then
    mount -o remount,bind,ro "$2"
    mount --bind "$3/spool" "$2/var/spool/asterisk"
    mount --bind "$3/tmp" "$2/tmp"
fi
mount -t proc proc "$2/proc"
mount --bind /dev "$2/dev"
mount --bind "$3" "$2/mnt"
exec chroot "$2" /usr/sbin/asterisk -C /mnt/etc/asterisk.conf -f
"""


def prepare_state(state: Path) -> None:
    """Empty run, spool, log, db and tmp directories under ``state`` (etc is written by
    the caller), with what Asterisk expects to exist."""
    for sub in STATE_DIRS:
        shutil.rmtree(state / sub, ignore_errors=True)
        (state / sub).mkdir(parents=True)
    (state / "log" / "cdr-custom").mkdir()
    # res_stasis_recording does not create it; the fallback dialplan writes below it.
    (state / "spool" / "recording" / "fallback").mkdir(parents=True)


def command(mount_point: Path, state: Path, *, private_writes: bool = False) -> list[str]:
    """The command line that runs Asterisk from the lab root, isolated as described
    above, with ``state/etc/asterisk.conf``."""
    mount_point.mkdir(parents=True, exist_ok=True)
    return [
        "unshare", "--mount", "--propagation", "private",
        "sh", "-c", _START_SCRIPT, "sh", str(LAB_ROOT), str(mount_point), str(state),
        "private" if private_writes else "shared",
    ]  # fmt: skip


# --- ARI ----------------------------------------------------------------------------------


def ari_request(
    base_url: str, user: str, password: str, method: str, path: str, timeout: float = 5.0
) -> Any:
    """One ARI request (``path`` below /ari/); the decoded JSON body, or None."""
    request = urllib.request.Request(
        f"{base_url.rstrip('/')}/ari/{path.lstrip('/')}", method=method
    )
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body = response.read()
    return json.loads(body) if body else None


def ari_answers(base_url: str, user: str, password: str) -> bool:
    try:
        ari_request(base_url, user, password, "GET", "asterisk/info", timeout=2)
    except (OSError, urllib.error.URLError):
        return False
    return True
