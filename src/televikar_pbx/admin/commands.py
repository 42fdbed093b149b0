"""The operator's commands (``customers``, ``agents``, ``bookings``, ``calls``, ``sla``,
``billing``, ``reports``, ``messages``),
registered on the ``televikar-pbx`` parser by ``cli.py``.

Each command validates its input (``inputs``), runs in one database transaction
(``session``), prints a table or JSON (``render``; CSV: ``csvout``) and exits 0; on
error it raises a ``TelevikarError`` whose one-line message ``cli.main`` prints,
exiting 1.
"""

from __future__ import annotations

import argparse
from typing import Any

from televikar_pbx.admin import (
    agents,
    billing,
    bookings,
    calls,
    customers,
    messages,
    reports,
    sla,
)


def register(sub: argparse._SubParsersAction[Any]) -> None:
    customers.register(sub)
    agents.register(sub)
    bookings.register(sub)
    calls.register(sub)
    sla.register(sub)
    billing.register(sub)
    reports.register(sub)
    messages.register(sub)
