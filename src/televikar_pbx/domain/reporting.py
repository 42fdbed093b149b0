"""What a customer is promised and told: SLA targets and the report schedule.

Targets are percentages (see the SLA metric definitions in the design): the service
level with a 12 s and a 20 s answer limit should reach ``sl12_target`` and
``sl20_target``; the share of lost calls should stay at or below ``lost_target``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum


class ReportInterval(StrEnum):
    """How often the customer's SLA report is sent (``none``: never)."""

    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class ReportSettings:
    """Per-customer SLA targets (percent) and where and how often reports go."""

    sl12_target: float = 70.0
    sl20_target: float = 90.0
    lost_target: float = 5.0
    interval: ReportInterval = ReportInterval.NONE
    emails: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("sl12_target", "sl20_target", "lost_target"):
            value = getattr(self, name)
            if not math.isfinite(value) or not 0 <= value <= 100:
                raise ValueError(f"{name} must be a percentage 0..100, got {value!r}")
        object.__setattr__(self, "interval", ReportInterval(self.interval))
        if len(set(self.emails)) != len(self.emails):
            raise ValueError(f"a report address is given twice: {list(self.emails)}")
