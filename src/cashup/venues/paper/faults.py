"""Fault injection for the paper exchange: latency, rejections and lost responses, seeded.

Each order call (submit, cancel, amend) is the exchange's ``n``-th call since its journal began, and
the faults it suffers are drawn from ``random.Random(f"{seed}/faults/{n}")``: the same seed and the
same sequence of calls give the same faults, across restarts of a journaled exchange too.

- ``latency_seconds``: every order call and every fetch sleeps this long before it answers (after the
  exchange has applied it, as the answer of a real venue takes time to come back).
- ``reject_rate``: a submit is refused with a REJECTED report (its client order id is still received).
- ``accept_then_timeout_rate``: a submit is accepted and handled as usual (reports included), then the
  call raises ``VenueUnavailable`` as a client timeout would: the caller does not know the outcome.
- ``drop_response_rate``: the same for any order call (submit, cancel, amend): applied, answer lost.
"""

import random
from dataclasses import dataclass
from enum import StrEnum

from cashup.venues.errors import VenueUnavailable

FAULT_REJECT_REASON = "rejected by fault injection"


class InjectedTimeout(VenueUnavailable):
    """The call was applied but its answer is lost (``accept_then_timeout`` or ``drop_response``)."""


class Fault(StrEnum):
    REJECT = "reject"
    ACCEPT_THEN_TIMEOUT = "accept_then_timeout"
    DROP_RESPONSE = "drop_response"


@dataclass(frozen=True, slots=True)
class FaultConfig:
    """Which faults the paper exchange injects, and how often. All zero (the default): none."""

    latency_seconds: float = 0.0
    reject_rate: float = 0.0
    accept_then_timeout_rate: float = 0.0
    drop_response_rate: float = 0.0
    seed: int | None = None
    """Seed of the fault draws; ``None`` uses the exchange's seed."""

    def __post_init__(self) -> None:
        if self.latency_seconds < 0:
            raise ValueError("latency_seconds must not be negative")
        for name in ("reject_rate", "accept_then_timeout_rate", "drop_response_rate"):
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {rate}")

    @property
    def enabled(self) -> bool:
        return bool(self.reject_rate or self.accept_then_timeout_rate or self.drop_response_rate)

    def draw(self, exchange_seed: int, call_number: int, *, is_submit: bool) -> Fault | None:
        """The fault of the ``call_number``-th order call, or ``None``. Pure: same arguments, same answer."""
        if not self.enabled:
            return None
        seed = exchange_seed if self.seed is None else self.seed
        rng = random.Random(f"{seed}/faults/{call_number}")
        # Three draws every time, so one rate never shifts the draws of another.
        reject, timeout, drop = rng.random(), rng.random(), rng.random()
        if is_submit and reject < self.reject_rate:
            return Fault.REJECT
        if is_submit and timeout < self.accept_then_timeout_rate:
            return Fault.ACCEPT_THEN_TIMEOUT
        if drop < self.drop_response_rate:
            return Fault.DROP_RESPONSE
        return None
