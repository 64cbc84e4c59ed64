"""The few kinds of venue failure the engine tells apart. Adapters map foreign errors onto these in one place."""


class VenueError(Exception):
    """Base of venue failures."""

    transient = False


class VenueUnavailable(VenueError):
    """Network error, timeout or venue down: the outcome of the request is unknown and must be reconciled."""

    transient = True


class VenueRateLimited(VenueError):
    """The venue asked us to slow down: back off and retry."""

    transient = True


class VenueRejected(VenueError):
    """The venue refused the request for good (invalid order, insufficient funds)."""


class VenueOrderNotFound(VenueError):
    """The venue does not know the order."""


class VenueAccountBroken(VenueRejected):
    """The venue refused the account's credentials: nothing was placed, and the account needs new keys."""


class VenueDuplicateOrder(VenueUnavailable):
    """The venue already has an order with this client id: it exists, so reconcile instead of sending again."""
