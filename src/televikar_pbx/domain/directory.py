"""Who we answer for and who answers: customers and agents as the core sees them.

Repositories (``db/``) build these from rows; the core never sees SQLAlchemy.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Customer:
    id: int
    name: str
    display_name: str
    timezone: str = "Europe/Oslo"
    numbers: tuple[str, ...] = ()
    forwarded_from: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Agent:
    id: int
    name: str
    endpoint: str
    customer_ids: frozenset[int] = field(default_factory=frozenset)

    def serves(self, customer_id: int) -> bool:
        return customer_id in self.customer_ids


@dataclass(frozen=True, slots=True)
class Directory:
    """A snapshot of customers and agents, loaded at start (and on reload)."""

    customers: tuple[Customer, ...] = ()
    agents: tuple[Agent, ...] = ()

    def customer_for_number(self, dialled: str) -> Customer | None:
        for customer in self.customers:
            if dialled in customer.numbers:
                return customer
        return None

    def customer(self, customer_id: int) -> Customer | None:
        for customer in self.customers:
            if customer.id == customer_id:
                return customer
        return None
