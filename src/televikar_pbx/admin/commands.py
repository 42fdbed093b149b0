"""The operator's commands (``customers``, ``agents``, ``bookings``, ``calls``, ``sla``,
``billing``, ``reports``, ``messages``, ``users``, ``audit``, ``kb``, ``staffing``),
registered on the ``televikar-pbx`` parser by ``cli.py``.

Each command validates its input (``inputs``), runs its work in one database
transaction (``session.run``; ``reports send`` and nightly's sending commit each record
as it goes), prints a table or JSON (``render``; CSV: ``reports.csvout``) and exits 0;
on error it raises a ``TelevikarError`` whose one-line message ``cli.main`` prints,
exiting 1. What is shown to customers (Norwegian labels, formats) is in ``reports/``;
"now" comes from the command line's clock (``args.clock``).
"""

from __future__ import annotations

import argparse
from typing import Any

from televikar_pbx.admin import (
    agents,
    audit,
    billing,
    bookings,
    calls,
    customers,
    knowledge,
    messages,
    reports,
    sla,
    staffing,
    users,
)


def register(sub: argparse._SubParsersAction[Any]) -> None:
    customers.register(sub)
    agents.register(sub)
    bookings.register(sub)
    calls.register(sub)
    sla.register(sub)
    staffing.register(sub)
    billing.register(sub)
    reports.register(sub)
    messages.register(sub)
    users.register(sub)
    audit.register(sub)
    knowledge.register(sub)
