"""The balance rows an event may change, locked together so concurrent writers never deadlock on them."""

from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

from cashup.core import ledger
from cashup.core.enums import OrderSide, OrderType
from cashup.core.orders import Order, OrderInitialized
from cashup.core.settlement import balances_touched

ACCOUNT = UUID(int=7)


def order(order_type: OrderType = OrderType.LIMIT, side: OrderSide = OrderSide.BUY) -> Order:
    locked = None if order_type is OrderType.TWAP else ("USDT" if side is OrderSide.BUY else "BTC")
    return Order.initialize(OrderInitialized(
        at=datetime(2026, 1, 2, tzinfo=UTC), order_id=UUID(int=1), client_order_id="c", user_id="u",
        account_id=ACCOUNT, exchange="paper", symbol="BTC/USDT", side=side, order_type=order_type,
        quantity=Decimal("1"), price=Decimal("100"), reserve_price=Decimal("100"), locked_asset=locked))


def test_a_fill_touches_both_sides_on_the_account_and_at_the_venue_and_the_fee() -> None:
    venue = ledger.venue_account("paper")

    assert balances_touched(order(), "BTC", fill=True) == {
        (ACCOUNT, "USDT"), (ACCOUNT, "BTC"), (venue, "USDT"), (venue, "BTC"), (ledger.FEES_ACCOUNT, "BTC")}


def test_a_cancel_touches_only_the_lock_and_an_algorithm_parent_nothing() -> None:
    assert balances_touched(order(side=OrderSide.SELL)) == {(ACCOUNT, "BTC")}
    assert balances_touched(order(OrderType.TWAP), "USDT", fill=True) == set()
