"""Where our service's CPU goes: a py-spy profile of one step, summarised.

py-spy is a dev dependency (pyproject.toml), so ``.venv/bin/py-spy`` is there after
``make venv`` (else one on PATH is used); ``--profile-rate R`` records our process
during its step at R calls/s (``py-spy record --nonblocking --gil --format raw``: one
line per distinct stack, ``frame;frame;...;frame COUNT``, only threads holding the GIL,
so samples ~ the Python CPU time of the process). :func:`summarize` turns that into
shares per library, per function of ours, and the hottest functions.
"""

from __future__ import annotations

import re
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Any

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")
_SITE = re.compile(r"(?:site|dist)-packages/([A-Za-z0-9_]+)")
_STDLIB = re.compile(r"/lib/python3\.\d+/([A-Za-z0-9_]+)")


def py_spy() -> str | None:
    here = Path(sys.executable).with_name("py-spy")
    return str(here) if here.is_file() else shutil.which("py-spy")


def package_of(file: str) -> str:
    """The library a frame's file belongs to: a site-packages top-level package, our
    own ``televikar_pbx.<part>``, or ``stdlib:<module>``."""
    if "televikar_pbx/" in file:
        part = file.split("televikar_pbx/", 1)[1].split("/", 1)[0]
        return f"televikar_pbx.{part.removesuffix('.py')}"
    site = _SITE.search(file)
    if site:
        return site.group(1)
    std = _STDLIB.search(file)
    if std:
        return f"stdlib:{std.group(1).removesuffix('.py')}"
    if file.startswith("<frozen "):
        return f"stdlib:{file[8:-1].split('.')[0]}"
    return file or "?"


# Frames every stack passes through (the event loop, start-up): no information.
_ROOTS = {"stdlib:asyncio", "stdlib:runpy", "stdlib:threading", "televikar_pbx.cli", "?"}


def summarize(collapsed: str, top: int = 15) -> dict[str, Any]:
    """Inclusive shares per library and per function of ours (a stack counts once for
    each it passes through) and self share per function, in % of all samples."""
    total = 0
    inclusive: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    own: Counter[str] = Counter()
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [f for f in stack.split(";") if f]
        packages, functions = set(), set()
        for frame in frames:
            match = _FRAME.match(frame)
            file = match.group("file") if match else ""
            package = package_of(file)
            packages.add(package)
            if match and package.startswith("televikar_pbx.") and package not in _ROOTS:
                functions.add(f"{match.group('func')} ({package})")
        for package in packages - _ROOTS:
            inclusive[package] += count
        for function in functions:
            ours[function] += count
        leaf = _FRAME.match(frames[-1]) if frames else None
        if leaf:
            own[f"{leaf.group('func')} ({package_of(leaf.group('file'))})"] += count

    def share(counter: Counter[str]) -> list[list[Any]]:
        return [[name, round(100 * n / total, 1)] for name, n in counter.most_common(top)]

    return {
        "samples": total,
        "inclusive_by_library": share(inclusive) if total else [],
        "inclusive_by_our_function": share(ours) if total else [],
        "self_by_function": share(own) if total else [],
    }
