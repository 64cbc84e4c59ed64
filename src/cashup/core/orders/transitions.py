"""The order state machine as data: ``(status, event kind) -> next status``.

Anything not in the table is an invalid transition and changes nothing.
"""

from typing import Final

from cashup.core.enums import OrderStatus as S
from cashup.core.orders.events import EventKind as E

RESUME: Final = "resume"
"""Return to ``accepted`` or ``partially_filled``, whichever the filled quantity says."""

Target = S | str

TRANSITIONS: dict[tuple[S, E], Target] = {
    (S.PENDING_NEW, E.SUBMITTED): S.SUBMITTED,
    (S.PENDING_NEW, E.DENIED): S.DENIED,
    (S.PENDING_NEW, E.HELD): S.UNTRIGGERED,
    # Canceled before it was ever sent: nothing to ask a venue.
    (S.PENDING_NEW, E.CANCELED): S.CANCELED,
    (S.UNTRIGGERED, E.TRIGGERED): S.TRIGGERED,
    (S.UNTRIGGERED, E.CANCELED): S.CANCELED,
    (S.UNTRIGGERED, E.REPLACED): S.UNTRIGGERED,
    (S.UNTRIGGERED, E.EXPIRED): S.EXPIRED,
    (S.TRIGGERED, E.SUBMITTED): S.SUBMITTED,
    (S.TRIGGERED, E.CANCELED): S.CANCELED,
    (S.SUBMITTED, E.ACCEPTED): S.ACCEPTED,
    (S.SUBMITTED, E.REJECTED): S.REJECTED,
    # Venues may report a fill before the acknowledgement.
    (S.SUBMITTED, E.PARTIALLY_FILLED): S.PARTIALLY_FILLED,
    (S.SUBMITTED, E.FILLED): S.FILLED,
    (S.SUBMITTED, E.CANCELED): S.CANCELED,
    (S.SUBMITTED, E.EXPIRED): S.EXPIRED,
    (S.SUBMITTED, E.CANCEL_REQUESTED): S.PENDING_CANCEL,
    (S.ACCEPTED, E.PARTIALLY_FILLED): S.PARTIALLY_FILLED,
    (S.ACCEPTED, E.FILLED): S.FILLED,
    (S.ACCEPTED, E.CANCEL_REQUESTED): S.PENDING_CANCEL,
    (S.ACCEPTED, E.REPLACE_REQUESTED): S.PENDING_REPLACE,
    # Unsolicited cancel by the venue (self-trade prevention, maintenance).
    (S.ACCEPTED, E.CANCELED): S.CANCELED,
    (S.ACCEPTED, E.EXPIRED): S.EXPIRED,
    (S.PARTIALLY_FILLED, E.PARTIALLY_FILLED): S.PARTIALLY_FILLED,
    (S.PARTIALLY_FILLED, E.FILLED): S.FILLED,
    (S.PARTIALLY_FILLED, E.CANCEL_REQUESTED): S.PENDING_CANCEL,
    (S.PARTIALLY_FILLED, E.REPLACE_REQUESTED): S.PENDING_REPLACE,
    (S.PARTIALLY_FILLED, E.CANCELED): S.CANCELED,
    (S.PARTIALLY_FILLED, E.EXPIRED): S.EXPIRED,
    (S.PENDING_CANCEL, E.CANCELED): S.CANCELED,
    (S.PENDING_CANCEL, E.CANCEL_REJECTED): RESUME,
    # Fills keep arriving while a cancel is in flight; a full fill wins the race.
    (S.PENDING_CANCEL, E.PARTIALLY_FILLED): S.PENDING_CANCEL,
    (S.PENDING_CANCEL, E.FILLED): S.FILLED,
    # The acknowledgement of an order canceled while it was still submitted.
    (S.PENDING_CANCEL, E.ACCEPTED): S.PENDING_CANCEL,
    (S.PENDING_CANCEL, E.REJECTED): S.REJECTED,
    (S.PENDING_CANCEL, E.EXPIRED): S.EXPIRED,
    (S.PENDING_REPLACE, E.REPLACED): RESUME,
    (S.PENDING_REPLACE, E.REPLACE_REJECTED): RESUME,
    (S.PENDING_REPLACE, E.PARTIALLY_FILLED): S.PENDING_REPLACE,
    (S.PENDING_REPLACE, E.FILLED): S.FILLED,
    (S.PENDING_REPLACE, E.CANCELED): S.CANCELED,
    (S.PENDING_REPLACE, E.EXPIRED): S.EXPIRED,
    # Late fills after a cancel or expiry are booked (real venues do this); a completing one fills the order.
    (S.CANCELED, E.PARTIALLY_FILLED): S.CANCELED,
    (S.CANCELED, E.FILLED): S.FILLED,
    (S.EXPIRED, E.PARTIALLY_FILLED): S.EXPIRED,
    (S.EXPIRED, E.FILLED): S.FILLED,
}


def next_status(status: S, kind: E, has_fills: bool) -> S | None:
    """Return the status an event leads to from ``status``, or ``None`` if the pair is not allowed."""
    target = TRANSITIONS.get((status, kind))
    if target == RESUME:
        return S.PARTIALLY_FILLED if has_fills else S.ACCEPTED
    return target  # type: ignore[return-value]
