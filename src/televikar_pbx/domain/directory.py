"""Who we answer for and who answers: customers and agents as the core sees them.

Repositories (``db/``) build these from rows; the core never sees SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from televikar_pbx.domain.billing import Prices
from televikar_pbx.domain.calendar import Calendar


class HoldStyle(StrEnum):
    """What a waiting caller hears. Ringing by default: the caller should not notice a
    queue, since the agent answers in the customer's name."""

    RINGING = "ringing"
    MUSIC = "music"  # music on hold (Asterisk's default class unless set)
    ANNOUNCEMENT = "announcement"  # the caller is answered and hears a recording, looped


class ClosedAction(StrEnum):
    MESSAGE = "message"  # take a message (default)
    ANNOUNCEMENT = "announcement"  # play the closed announcement and hang up


class OutsidePolicy(StrEnum):
    """What happens to a call outside every active agreement and booking."""

    MESSAGE = "message"  # take a message (default)
    REJECT = "reject"  # play the rejection announcement and hang up


@dataclass(frozen=True, slots=True)
class CustomerRules:
    """Per-customer numbers and choices the desk needs; defaults are the service's."""

    hold_style: HoldStyle = HoldStyle.RINGING
    # Sound for HoldStyle.ANNOUNCEMENT, or the music class for HoldStyle.MUSIC.
    hold_media: str | None = None
    wrap_up_s: float = 10.0
    max_wait_s: float = 45.0
    answer_target_s: float = 12.0
    closed_action: ClosedAction = ClosedAction.MESSAGE
    outside_policy: OutsidePolicy = OutsidePolicy.MESSAGE
    # The customer's own message prompt (an Asterisk sound name), else ours.
    message_prompt: str | None = None


@dataclass(frozen=True, slots=True)
class Customer:
    id: int
    name: str
    display_name: str
    timezone: str = "Europe/Oslo"
    numbers: tuple[str, ...] = ()
    forwarded_from: tuple[str, ...] = ()
    rules: CustomerRules = field(default_factory=CustomerRules)
    calendar: Calendar = field(default_factory=Calendar)
    # What the customer pays (docs/billing.md); all 0 until set.
    prices: Prices = field(default_factory=Prices)
    # The agent's greeting template (domain.desk_live); None: the default.
    greeting: str | None = None


@dataclass(frozen=True, slots=True)
class Agent:
    id: int
    name: str
    endpoint: str
    customer_ids: frozenset[int] = field(default_factory=frozenset)
    # customer id -> priority: 0 is first choice; agents with a higher number are offered
    # a customer's callers only when no lower-numbered agent is idle (like a queue penalty).
    priorities: Mapping[int, int] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    logged_in: bool = False
    paused: bool = False

    def serves(self, customer_id: int) -> bool:
        return customer_id in self.customer_ids

    def priority(self, customer_id: int) -> int:
        return self.priorities.get(customer_id, 0)


@dataclass(frozen=True, slots=True)
class Directory:
    """A snapshot of customers and agents, loaded at start (and on reload)."""

    customers: tuple[Customer, ...] = ()
    agents: tuple[Agent, ...] = ()

    def customer_for_call(self, dialled: str, forwarded_from: str | None = None) -> Customer | None:
        """The customer a call is for: by the dialled number (our DID); when several
        customers share that entry number, the forwarded-from (Diversion) number decides."""
        candidates = [c for c in self.customers if dialled in c.numbers]
        if len(candidates) == 1:
            return candidates[0]
        pool = candidates or list(self.customers)
        if forwarded_from:
            by_forward = [c for c in pool if forwarded_from in c.forwarded_from]
            if len(by_forward) == 1:
                return by_forward[0]
        return None

    def customer_for_number(self, dialled: str) -> Customer | None:
        return self.customer_for_call(dialled)

    def customer(self, customer_id: int) -> Customer | None:
        for customer in self.customers:
            if customer.id == customer_id:
                return customer
        return None
