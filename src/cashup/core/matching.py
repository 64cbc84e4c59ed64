"""A price-time-priority limit order book for one symbol.

Pure: no I/O, no clock, no event loop. Prices and quantities are ``Decimal``. Each side keeps a dict
``price -> deque of resting orders`` (time priority inside a level) and a sorted list of its prices
(``bisect``) so the best price is one index away. Trades happen at the resting (maker) order's price.

Invariants kept after every operation: the book is never crossed at rest (best bid < best ask),
orders at a better price fill first and, at one price, earlier orders fill first; quantity is
conserved per order: ``quantity == filled + resting + canceled``.
"""

from bisect import bisect_left, insort
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from operator import ge, le
from typing import NamedTuple

from cashup.core.enums import OrderSide, OrderType, TimeInForce
from cashup.core.errors import DomainError
from cashup.core.money import ZERO

BUY = OrderSide.BUY
SELL = OrderSide.SELL


class BookError(DomainError):
    """A book operation that cannot be applied; the book is unchanged."""

    code = "BookError"


class DuplicateOrderId(BookError):
    code = "DuplicateOrderId"


class OrderNotResting(BookError):
    """The order id is not resting in the book (unknown, filled, canceled or expired)."""

    code = "OrderNotResting"


class AmendRejected(BookError):
    """The amendment is not allowed (new total not above the filled quantity, post-only would take)."""

    code = "AmendRejected"


@dataclass(frozen=True, slots=True)
class BookOrderRequest:
    """An order offered to the book, valid by construction: the book trusts it and checks nothing again.

    A limit order has a price above zero; a market order has none. ``expire_at`` only matters to
    orders that rest (GTD; the book expires them when ``OrderBook.expire`` is called).
    """

    order_id: str
    owner: str
    side: OrderSide
    quantity: Decimal
    price: Decimal | None = None
    order_type: OrderType = OrderType.LIMIT
    time_in_force: TimeInForce = TimeInForce.GTC
    post_only: bool = False
    expire_at: datetime | None = None

    def __post_init__(self) -> None:
        if not self.quantity > ZERO:
            raise ValueError(f"quantity must be greater than 0, not {self.quantity}")
        if self.order_type is OrderType.LIMIT:
            if self.price is None or not self.price > ZERO:
                raise ValueError(f"a limit order needs a price greater than 0, not {self.price}")
        elif self.order_type is OrderType.MARKET:
            if self.price is not None:
                raise ValueError("a market order has no price")
        else:
            raise ValueError(f"the book matches market and limit orders, not {self.order_type}")


@dataclass(slots=True, eq=False)
class RestingOrder:
    """An order resting in the book. Owned by the book: read it, do not change it."""

    order_id: str
    owner: str
    side: OrderSide
    price: Decimal
    quantity: Decimal
    """Total quantity, including what is already filled."""
    remaining: Decimal
    sequence: int
    """Time priority: lower rested earlier. Renewed when an amendment loses priority."""
    post_only: bool = False
    expire_at: datetime | None = None

    @property
    def filled(self) -> Decimal:
        return self.quantity - self.remaining


class Fill(NamedTuple):
    """One trade between a resting (maker) order and an incoming (taker) order, at the maker's price."""

    maker_order_id: str
    maker_owner: str
    taker_order_id: str
    taker_side: OrderSide
    price: Decimal
    quantity: Decimal

    @property
    def maker_side(self) -> OrderSide:
        return self.taker_side.opposite


class SubmitOutcome(StrEnum):
    FILLED = "filled"
    """Completely filled on arrival."""
    RESTING = "resting"
    """The remainder (possibly all of it) rests in the book."""
    CANCELED = "canceled"
    """The unfilled remainder of an IOC or market order was canceled."""
    REJECTED = "rejected"
    """Nothing happened (post-only would take, or fill-or-kill could not fill completely): all of it is canceled."""


class SubmitResult(NamedTuple):
    """What the book did with one submitted order: ``quantity == filled + resting + canceled``."""

    order_id: str
    outcome: SubmitOutcome
    quantity: Decimal
    fills: list[Fill]
    filled_quantity: Decimal
    resting_quantity: Decimal
    canceled_quantity: Decimal
    reason: str | None


@dataclass(slots=True)
class AmendResult:
    """An applied amendment. A re-priced order that crosses trades as a taker: see ``fills``."""

    order_id: str
    quantity: Decimal
    price: Decimal
    kept_priority: bool
    fills: list[Fill] = field(default_factory=list)
    resting: bool = True
    """False when the amended order filled completely against the book."""


POST_ONLY_WOULD_TAKE = "post-only order would take liquidity"
FOK_CANNOT_FILL = "fill-or-kill order cannot be filled completely"

# Hot-path constants: enum attribute lookups and NamedTuple keyword construction cost more than
# the matching itself. ``tuple.__new__`` builds a NamedTuple from a ready tuple of all its fields.
_new_tuple = tuple.__new__
_new_object = object.__new__
_IOC = TimeInForce.IOC
_FOK = TimeInForce.FOK
_FILLED = SubmitOutcome.FILLED
_RESTING = SubmitOutcome.RESTING
_CANCELED = SubmitOutcome.CANCELED
_REJECTED = SubmitOutcome.REJECTED


class PriceLevel(NamedTuple):
    price: Decimal
    quantity: Decimal
    order_count: int


class DepthSnapshot(NamedTuple):
    """Aggregated levels, best first on each side."""

    bids: list[PriceLevel]
    asks: list[PriceLevel]


class _BookSide:
    """Price levels of one side. ``prices`` ascends; the best price is at ``best_index``."""

    __slots__ = ("levels", "prices", "best_index", "crossable")

    def __init__(self, side: OrderSide) -> None:
        self.levels: dict[Decimal, deque[RestingOrder]] = {}
        self.prices: list[Decimal] = []
        self.best_index = -1 if side is BUY else 0
        # crossable(best resting price, taker limit): whether a taker at that limit reaches this side.
        self.crossable = ge if side is BUY else le

    def best(self) -> Decimal | None:
        return self.prices[self.best_index] if self.prices else None

    def add(self, order: RestingOrder) -> None:
        level = self.levels.get(order.price)
        if level is None:
            level = self.levels[order.price] = deque()
            insort(self.prices, order.price)
        level.append(order)

    def remove(self, order: RestingOrder) -> None:
        price = order.price
        level = self.levels[price]
        level.remove(order)
        if not level:
            del self.levels[price]
            del self.prices[bisect_left(self.prices, price)]

    def available(self, limit: Decimal | None, wanted: Decimal) -> Decimal:
        """Quantity a taker with ``limit`` could take, counting no further than ``wanted``."""
        total = ZERO
        ordered = self.prices if self.best_index == 0 else reversed(self.prices)
        for price in ordered:
            if limit is not None and not self.crossable(price, limit):
                break
            for order in self.levels[price]:
                total += order.remaining
            if total >= wanted:
                break
        return total

    def snapshot(self, count: int) -> list[PriceLevel]:
        ordered = self.prices[:count] if self.best_index == 0 else self.prices[: -count - 1 : -1]
        result = []
        for price in ordered:
            level = self.levels[price]
            result.append(PriceLevel(price, sum((order.remaining for order in level), ZERO), len(level)))
        return result


class OrderBook:
    """The limit order book of one symbol with price-time priority matching."""

    __slots__ = ("symbol", "_bids", "_asks", "_orders", "_expiring", "_sequence")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self._bids = _BookSide(BUY)
        self._asks = _BookSide(SELL)
        self._orders: dict[str, RestingOrder] = {}
        self._expiring: dict[str, RestingOrder] = {}
        self._sequence = 0

    # -- queries ---------------------------------------------------------------------------------

    def best_bid(self) -> Decimal | None:
        return self._bids.best()

    def best_ask(self) -> Decimal | None:
        return self._asks.best()

    def depth(self, levels: int = 10) -> DepthSnapshot:
        return DepthSnapshot(self._bids.snapshot(levels), self._asks.snapshot(levels))

    def get(self, order_id: str) -> RestingOrder | None:
        return self._orders.get(order_id)

    def __contains__(self, order_id: object) -> bool:
        return order_id in self._orders

    def __len__(self) -> int:
        return len(self._orders)

    def orders(self) -> Iterator[RestingOrder]:
        """Every resting order, bids best first then asks best first, in time priority inside a level."""
        for side in (self._bids, self._asks):
            ordered = reversed(side.prices) if side.best_index == -1 else iter(side.prices)
            for price in ordered:
                yield from side.levels[price]

    # -- commands --------------------------------------------------------------------------------

    def submit(self, request: BookOrderRequest) -> SubmitResult:
        """Match an incoming order against the book and rest, cancel or reject what remains."""
        order_id = request.order_id
        if order_id in self._orders:
            raise DuplicateOrderId(f"order {order_id} is already resting", order_id=order_id)
        quantity = request.quantity
        limit = request.price  # None for a market order
        side = request.side
        if side is BUY:
            own, contra = self._bids, self._asks
        else:
            own, contra = self._asks, self._bids
        prices = contra.prices
        time_in_force = request.time_in_force
        if request.post_only and (limit is None or (prices and contra.crossable(prices[contra.best_index], limit))):
            return _new_tuple(
                SubmitResult, (order_id, _REJECTED, quantity, [], ZERO, ZERO, quantity, POST_ONLY_WOULD_TAKE)
            )
        if time_in_force is _FOK and contra.available(limit, quantity) < quantity:
            return _new_tuple(SubmitResult, (order_id, _REJECTED, quantity, [], ZERO, ZERO, quantity, FOK_CANNOT_FILL))

        fills: list[Fill] = []
        remaining = quantity
        if prices and (limit is None or (prices[0] <= limit if side is BUY else prices[-1] >= limit)):
            # The loop of ``_match``, inlined (a call costs ~10% of a taker order); keep the two alike.
            index = contra.best_index
            crossable = contra.crossable
            levels = contra.levels
            orders = self._orders
            append = fills.append
            while True:
                price = prices[index]
                level = levels[price]
                while level:
                    maker = level[0]
                    available = maker.remaining
                    if available <= remaining:
                        traded = available
                        maker.remaining = ZERO
                        level.popleft()
                        del orders[maker.order_id]
                        if maker.expire_at is not None:
                            del self._expiring[maker.order_id]
                    else:
                        traded = remaining
                        maker.remaining = available - traded
                    remaining -= traded
                    append(_new_tuple(Fill, (maker.order_id, maker.owner, order_id, side, price, traded)))
                    if not remaining:
                        break
                if not level:
                    del levels[price]
                    del prices[index]
                if not remaining:
                    return _new_tuple(SubmitResult, (order_id, _FILLED, quantity, fills, quantity, ZERO, ZERO, None))
                if not prices or (limit is not None and not crossable(prices[index], limit)):
                    break
            filled = quantity - remaining
        else:
            filled = ZERO
        if limit is None or time_in_force is _IOC or time_in_force is _FOK:
            return _new_tuple(SubmitResult, (order_id, _CANCELED, quantity, fills, filled, ZERO, remaining, None))

        self._sequence = sequence = self._sequence + 1
        expire_at = request.expire_at
        # Built slot by slot: skipping the dataclass ``__init__`` call saves a tenth of a resting submit.
        order = _new_object(RestingOrder)
        order.order_id = order_id
        order.owner = request.owner
        order.side = side
        order.price = limit
        order.quantity = quantity
        order.remaining = remaining
        order.sequence = sequence
        order.post_only = request.post_only
        order.expire_at = expire_at
        level = own.levels.get(limit)
        if level is None:
            level = own.levels[limit] = deque()
            insort(own.prices, limit)
        level.append(order)
        self._orders[order_id] = order
        if expire_at is not None:
            self._expiring[order_id] = order
        return _new_tuple(SubmitResult, (order_id, _RESTING, quantity, fills, filled, remaining, ZERO, None))

    def cancel(self, order_id: str) -> RestingOrder | None:
        """Remove a resting order; return it (its ``remaining`` is the canceled quantity) or ``None``."""
        order = self._orders.pop(order_id, None)
        if order is None:
            return None
        if order.expire_at is not None:
            del self._expiring[order_id]
        side = self._bids if order.side is BUY else self._asks
        price = order.price
        level = side.levels[price]
        level.remove(order)
        if not level:
            del side.levels[price]
            del side.prices[bisect_left(side.prices, price)]
        return order

    def amend(self, order_id: str, quantity: Decimal | None = None, price: Decimal | None = None) -> AmendResult:
        """Change the total quantity and/or price of a resting order.

        ``quantity`` is the new total, filled part included, and must exceed what is filled. A smaller
        quantity at the same price keeps time priority; a new price or a larger quantity loses it.
        A new price that crosses the book trades at once as a taker (unless post-only: rejected).
        """
        order = self._orders.get(order_id)
        if order is None:
            raise OrderNotResting(f"order {order_id} is not resting in the book", order_id=order_id)
        new_quantity = order.quantity if quantity is None else quantity
        new_price = order.price if price is None else price
        filled = order.filled
        if new_quantity <= filled:
            raise AmendRejected(
                f"new quantity {new_quantity} must exceed the filled quantity {filled}", order_id=order_id
            )
        if new_price <= ZERO:
            raise AmendRejected("price must be greater than 0", order_id=order_id)
        contra = self._asks if order.side is BUY else self._bids
        best = contra.best()
        crosses = best is not None and contra.crossable(best, new_price)
        if crosses and order.post_only:
            raise AmendRejected(POST_ONLY_WOULD_TAKE, order_id=order_id)

        if new_price == order.price and new_quantity <= order.quantity:
            order.remaining = new_quantity - filled
            order.quantity = new_quantity
            return AmendResult(order_id, new_quantity, order.price, kept_priority=True)

        own_side = self._bids if order.side is BUY else self._asks
        own_side.remove(order)
        order.price = new_price
        order.quantity = new_quantity
        remaining = new_quantity - filled
        fills: list[Fill] = []
        if crosses:
            remaining = self._match(order_id, order.side, new_price, remaining, fills)
        order.remaining = remaining
        result = AmendResult(order_id, new_quantity, new_price, kept_priority=False, fills=fills)
        if not remaining:
            del self._orders[order_id]
            self._expiring.pop(order_id, None)
            result.resting = False
            return result
        self._sequence += 1
        order.sequence = self._sequence
        own_side.add(order)
        return result

    def expire(self, now: datetime) -> list[RestingOrder]:
        """Remove the orders whose ``expire_at`` is at or before ``now`` and return them, oldest first."""
        due = [order for order in self._expiring.values() if order.expire_at is not None and order.expire_at <= now]
        due.sort(key=lambda order: order.sequence)
        for order in due:
            self.cancel(order.order_id)
        return due

    # -- matching --------------------------------------------------------------------------------

    def _match(
        self, taker_id: str, side: OrderSide, limit: Decimal | None, quantity: Decimal, fills: list[Fill]
    ) -> Decimal:
        """Take liquidity from the contra side up to ``limit``; return the quantity left unfilled."""
        contra = self._asks if side is BUY else self._bids
        prices = contra.prices
        levels = contra.levels
        index = contra.best_index
        crossable = contra.crossable
        orders = self._orders
        expiring = self._expiring
        append = fills.append
        while quantity and prices:
            price = prices[index]
            if limit is not None and not crossable(price, limit):
                break
            level = levels[price]
            while level:
                maker = level[0]
                available = maker.remaining
                if available <= quantity:
                    traded = available
                    maker.remaining = ZERO
                    level.popleft()
                    del orders[maker.order_id]
                    if maker.expire_at is not None:
                        del expiring[maker.order_id]
                else:
                    traded = quantity
                    maker.remaining = available - traded
                quantity -= traded
                append(_new_tuple(Fill, (maker.order_id, maker.owner, taker_id, side, price, traded)))
                if not quantity:
                    break
            if not level:
                del levels[price]
                del prices[index]
        return quantity
