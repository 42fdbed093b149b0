"""End times from Asterisk's own CDR, for calls whose end we did not see ourselves
(our process was down or its ARI connection was lost when the caller hung up).

Reads the ``cdr_custom`` file of asterisk/conf/cdr_custom.conf (``Master.csv``:
uniqueid first, start/answer/end as ISO 8601 with milliseconds in columns 9 to 11).
Asterisk may write several rows for one channel (one per bridge it was in); the
channel's end is the latest.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import structlog

log = structlog.get_logger("televikar_pbx.calls.cdr")

_UNIQUEID, _END = 0, 10
_STAMP = "%Y-%m-%dT%H:%M:%S.%f%z"


def channel_ends(path: Path | None, uniqueids: Iterable[str]) -> dict[str, datetime]:
    """The end of each of ``uniqueids`` found in the CDR file; missing ones are left
    out (no file, not written yet, or a malformed row)."""
    wanted = set(uniqueids)
    ends: dict[str, datetime] = {}
    if path is None or not wanted:
        return ends
    try:
        with path.open(newline="", encoding="utf-8", errors="replace") as f:
            for row in csv.reader(f):
                if len(row) <= _END or row[_UNIQUEID] not in wanted:
                    continue
                try:
                    end = datetime.strptime(row[_END], _STAMP)
                except ValueError:
                    continue
                uniqueid = row[_UNIQUEID]
                if uniqueid not in ends or end > ends[uniqueid]:
                    ends[uniqueid] = end
    except OSError as exc:
        log.warning("cdr.unreadable", file=str(path), error=str(exc))
    return ends
