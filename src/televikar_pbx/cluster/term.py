"""How long a leader may believe it leads: its term, by its own monotonic clock.

Theory of operation
-------------------
The database decides who holds the lease, by the database's clock: a standby can take
it only once ``expires_at`` has passed there. A leader cut off from the database cannot
learn that it lost, so it must stop by itself, and before a standby can start. It
counts on its own monotonic clock from the moment it *sent* its last successful renew
(or acquire), since the database set ``expires_at`` to its own "now" plus the lease at
some instant after that::

    leader:    |-- renew sent (t0) ............ t0 + lease - margin: stops acting
    database:        `-- expires_at = now + lease >= t0 + lease: a standby may take it

So the leader's term ends ``margin`` before the earliest moment a standby could lead;
the margin covers the two clocks running at slightly different rates and an action
already on its way when the term ends. Writes to the database are fenced as well
(``db/leases_repo.py``), so even a leader whose process was frozen past its term cannot
write; the term is what stops its other actions (Asterisk commands).

Pure: no clock is read here, time is an argument (seconds of a monotonic clock).
"""

from __future__ import annotations


class LeaderTerm:
    """The end of this process's belief that it leads; None: it does not lead."""

    def __init__(self, lease_s: float, margin_s: float) -> None:
        if not 0 <= margin_s < lease_s:
            raise ValueError(f"margin {margin_s} s must be at least 0 and below the lease")
        self.lease_s = lease_s
        self.margin_s = margin_s
        self.until: float | None = None

    def confirmed(self, sent_at: float) -> None:
        """The database granted or renewed the lease by a statement sent at ``sent_at``.
        A late answer to an older statement never shortens the term."""
        until = sent_at + self.lease_s - self.margin_s
        if self.until is None or until > self.until:
            self.until = until

    def end(self) -> None:
        """Lost or released: leading no longer, whatever the clock says."""
        self.until = None

    def leading(self, now: float) -> bool:
        return self.until is not None and now < self.until

    def remaining(self, now: float) -> float:
        """Seconds of the term left at ``now`` (0 when not leading)."""
        return 0.0 if self.until is None else max(0.0, self.until - now)
