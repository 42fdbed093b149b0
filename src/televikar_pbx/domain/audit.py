"""The audit log's vocabulary: who did what to which customer's object, and when.

Every view of a message, a recording or a knowledge-base page, and every log-in, failed
log-in and log-out of the agent desk is one entry (issue 14, "Confidentiality").
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum


class AuditAction(StrEnum):
    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    LOGIN_LOCKED = "login_locked"  # refused unchecked: too many failures
    LOGOUT = "logout"
    VIEW_MESSAGE = "view_message"
    PLAY_RECORDING = "play_recording"
    VIEW_KB_PAGE = "view_kb_page"


@dataclass(frozen=True, slots=True)
class AuditRecord:
    at: dt.datetime
    action: AuditAction
    user_id: int | None = None
    # As typed at a failed log-in (there may be no such user), else the user's name.
    username: str | None = None
    customer_id: int | None = None
    object_id: str | None = None
    address: str | None = None
    detail: str | None = None
    id: int | None = None  # set once stored
