"""What an order's events do to the books: the ledger postings, the position change and the trade.

The order decides what it locks (``Order.apply`` for what a fill consumes, ``Order.relock`` for the rest);
this module turns those figures and the fills into postings. It is the only place that does, so every
writer — the API, the worker, the report applier — moves money the same way.
"""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from cashup.core import ledger
from cashup.core.enums import ALGORITHM_ORDER_TYPES, Liquidity, OrderSide
from cashup.core.instruments import split_symbol
from cashup.core.money import ZERO
from cashup.core.orders import Order, OrderFilled


@dataclass(frozen=True, slots=True)
class PositionChange:
    """A fill as the netting position sees it; ``fee`` counts only when paid in the quote currency."""

    side: OrderSide
    quantity: Decimal
    price: Decimal
    fee: Decimal


@dataclass(frozen=True, slots=True)
class TradeFacts:
    """The account-level record of one fill (its realized PnL comes from the position it moves)."""

    execution_id: str
    side: OrderSide
    quantity: Decimal
    price: Decimal
    fee: Decimal
    fee_currency: str
    liquidity: Liquidity
    executed_at: datetime


@dataclass(slots=True)
class Settlement:
    """Everything the books must record for a set of events on one order, in the order to apply it."""

    postings: list[ledger.Posting] = field(default_factory=list)
    fills: list[tuple[PositionChange, TradeFacts]] = field(default_factory=list)


def settle_fill(order: Order, fill: OrderFilled, lock_used: Decimal, base: str, quote: str) -> Settlement:
    """The postings, position change and trade of one fill of ``order``.

    An algorithm parent's fills mirror its children's, which are booked on the children: nothing to settle.
    """
    if order.order_type in ALGORITHM_ORDER_TYPES:
        return Settlement()
    fee_currency = fill.fee_currency or quote
    postings = ledger.fill(
        order.account_id, order.exchange, order.side, base, quote, fill.quantity, fill.price, fill.fee,
        fee_currency, lock_used, f"fill:{order.id}:{fill.execution_id}", order.id,
    )
    position = PositionChange(order.side, fill.quantity, fill.price, fill.fee if fee_currency == quote else ZERO)
    trade = TradeFacts(fill.execution_id, order.side, fill.quantity, fill.price, fill.fee, fee_currency,
                       fill.liquidity, fill.at)
    return Settlement(postings, [(position, trade)])


def settle_lock(order: Order, delta: Decimal) -> Settlement:
    """The posting that moves ``order``'s lock by ``delta`` (+ lock, − release); none for zero."""
    if delta == ZERO or order.locked_asset is None:
        return Settlement()
    correlation = f"order:{order.id}:v{order.version}"
    if delta > ZERO:
        return Settlement([ledger.lock(order.account_id, order.locked_asset, delta, correlation, order.id)])
    return Settlement([ledger.release(order.account_id, order.locked_asset, -delta, correlation, order.id)])


def balances_touched(order: Order, fill_fee_currency: str | None = None, *, fill: bool = False) -> set[tuple]:
    """The (account, asset) balance rows an event on ``order`` may change: its lock, and for a fill both sides of
    the pair on the account and at the venue, and the fee. Locking them all at once, in one order, keeps
    concurrent writers from deadlocking on them."""
    keys: set[tuple] = set()
    if order.locked_asset is not None:
        keys.add((order.account_id, order.locked_asset))
    if fill and order.order_type not in ALGORITHM_ORDER_TYPES:
        base, quote = split_symbol(order.symbol)
        venue = ledger.venue_account(order.exchange)
        keys |= {(order.account_id, base), (order.account_id, quote), (venue, base), (venue, quote),
                 (ledger.FEES_ACCOUNT, fill_fee_currency or quote)}
    return keys
