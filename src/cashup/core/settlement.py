"""What an order's events do to the books: the ledger postings, the position change and the trade.

The order decides what it locks (``Order.apply`` for what a fill consumes, ``Order.relock`` for the rest);
this module turns those figures and the fills into postings. It is the only place that does, so every
writer — the API, the worker, the report applier — moves money the same way.
"""

from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import ROUND_DOWN, Decimal, localcontext
from uuid import UUID

from cashup.core import ledger
from cashup.core.enums import ALGORITHM_ORDER_TYPES, Liquidity, OrderSide
from cashup.core.instruments import split_symbol
from cashup.core.money import EXACT, MAX_DIGITS, ZERO, storable
from cashup.core.orders import Order, OrderFilled
from cashup.core.positions import PositionState, apply_fill
from cashup.core.reservation import position_margin


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


@dataclass(frozen=True, slots=True)
class ContractFill:
    """A fill of a margined contract (a USDT perpetual). Its postings depend on the position it moves (the PnL it
    realizes, the margin it frees), so they are made by ``settle_contract_fill`` once the writer has that position.
    ``quantity`` counts contracts of ``contract_size`` base units each."""

    account_id: UUID
    order_id: UUID | None
    """``None`` for a trade made elsewhere (no order of ours)."""
    exchange: str
    asset: str
    """The settlement currency (margin, PnL, funding)."""
    side: OrderSide
    quantity: Decimal
    price: Decimal
    fee: Decimal
    fee_currency: str
    contract_size: Decimal
    leverage: Decimal
    lock_used: Decimal
    correlation_id: str
    trade: TradeFacts


@dataclass(slots=True)
class Settlement:
    """Everything the books must record for a set of events on one order, in the order to apply it."""

    postings: list[ledger.Posting] = field(default_factory=list)
    fills: list[tuple[PositionChange, TradeFacts]] = field(default_factory=list)
    contract_fills: list[ContractFill] = field(default_factory=list)


def settlement_asset(symbol: str) -> str:
    """The currency a symbol settles in: ``USDT`` of ``BTC/USDT:USDT``, the quote of a spot pair."""
    return symbol.partition(":")[2] or split_symbol(symbol)[1]


def settle_contract_fill(fill: ContractFill, state: PositionState) -> tuple[list[ledger.Posting], PositionState,
                                                                            Decimal]:
    """The postings of a contract fill given the position it moves, the position after it, and the PnL it realized
    (``Δprice × contracts × contract size``, gross of the fee).

    The contracts it opens hold ``price × contracts × size / leverage`` of margin, locked; the contracts it closes
    free their share of the position's margin (all of it when the position closes)."""
    closing = ZERO
    if state.quantity and (state.quantity > ZERO) != (fill.side is OrderSide.BUY):
        closing = min(state.quantity.copy_abs(), fill.quantity)
    with localcontext(EXACT):
        opening = fill.quantity - closing
    released = ZERO
    if closing:
        if closing == state.quantity.copy_abs():
            released = state.margin
        else:
            with localcontext(prec=3 * MAX_DIGITS):
                released = min(storable(state.margin * closing / state.quantity.copy_abs(), ROUND_DOWN), state.margin)
    held = position_margin(fill.price, opening, fill.contract_size, fill.leverage) if opening else ZERO
    fee_in_asset = fill.fee if fill.fee_currency == fill.asset else ZERO
    moved, realized = apply_fill(state, fill.side, fill.quantity, fill.price, fee_in_asset, fill.contract_size)
    with localcontext(EXACT):
        margin = state.margin - released + held
    moved = replace(moved, margin=margin)
    postings = ledger.contract_fill(fill.account_id, fill.exchange, fill.asset, realized, fill.fee,
                                    fill.fee_currency, fill.lock_used, held, released, fill.correlation_id,
                                    fill.order_id)
    return postings, moved, realized


def settle_funding(state: PositionState, amount: Decimal) -> PositionState:
    """The position after a funding payment of ``amount`` (> 0 received, < 0 paid)."""
    with localcontext(EXACT):
        return replace(state, funding=state.funding + amount)


def settle_fill(order: Order, fill: OrderFilled, lock_used: Decimal, base: str, quote: str) -> Settlement:
    """The postings, position change and trade of one fill of ``order``.

    An algorithm parent's fills mirror its children's, which are booked on the children: nothing to settle.
    """
    if order.order_type in ALGORITHM_ORDER_TYPES:
        return Settlement()
    if order.leverage is not None:
        asset = settlement_asset(order.symbol)
        fee_currency = fill.fee_currency or asset
        trade = TradeFacts(fill.execution_id, order.side, fill.quantity, fill.price, fill.fee, fee_currency,
                           fill.liquidity, fill.at)
        return Settlement(contract_fills=[ContractFill(
            order.account_id, order.id, order.exchange, asset, order.side, fill.quantity, fill.price, fill.fee,
            fee_currency, order.contract_size or Decimal(1), order.leverage, lock_used,
            f"fill:{order.id}:{fill.execution_id}", trade)])
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
    if fill and order.order_type not in ALGORITHM_ORDER_TYPES and order.leverage is not None:
        asset = settlement_asset(order.symbol)
        keys |= {(order.account_id, asset), (ledger.venue_account(order.exchange), asset),
                 (ledger.FEES_ACCOUNT, fill_fee_currency or asset)}
    elif fill and order.order_type not in ALGORITHM_ORDER_TYPES:
        base, quote = split_symbol(order.symbol)
        venue = ledger.venue_account(order.exchange)
        keys |= {(order.account_id, base), (order.account_id, quote), (venue, base), (venue, quote),
                 (ledger.FEES_ACCOUNT, fill_fee_currency or quote)}
    return keys
