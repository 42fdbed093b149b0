"""SLA metric definitions, version 1 (see docs/metrics.md).

Per customer and period:

* **offered**: calls that reached the customer's queue;
* **wait**: from arrival to answer (answered) or to hang-up / overflow (not answered);
* **short abandon**: hung up before answer with wait ≤ 12 s; not lost, and not in the
  service-level denominators;
* **lost**: hung up before answer with wait > 12 s;
* calls that ended in message capture are offered and not answered;
* **SL12** = answered with wait ≤ 12 s ÷ (offered - short abandons); **SL20** likewise
  with 20 s; **lost %** = lost ÷ offered.

The per-period figures are computed in :mod:`televikar_pbx.domain.sla`.
"""

from __future__ import annotations

from typing import Literal

from televikar_pbx.domain.outcomes import Outcome

DEFINITION_VERSION = 1
SHORT_ABANDON_S = 12.0
# Answer limits of the two service levels (a wait exactly at the limit is within it).
SL12_S = 12.0
SL20_S = 20.0

Kind = Literal["answered", "short_abandon", "lost", "not_answered", "not_offered"]


def classify(outcome: str | None, wait_s: float) -> Kind:
    """How one call counts in the SLA figures."""
    if outcome == Outcome.ANSWERED:
        return "answered"
    if outcome == Outcome.ABANDONED:
        return "short_abandon" if wait_s <= SHORT_ABANDON_S else "lost"
    if outcome in (Outcome.MESSAGE, Outcome.NO_MESSAGE):
        return "not_answered"
    # Unknown numbers, rejected calls and our own failures never reached a queue.
    return "not_offered"
