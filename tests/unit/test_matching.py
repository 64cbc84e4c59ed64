"""The order book: price-time priority, order types and the invariants that hold after anything."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from cashup.core.enums import OrderSide, OrderType, TimeInForce
from cashup.core.matching import (
    AmendRejected,
    BookOrderRequest,
    DuplicateOrderId,
    OrderBook,
    OrderNotResting,
    PriceLevel,
    SubmitOutcome,
)

BUY, SELL = OrderSide.BUY, OrderSide.SELL
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def limit(order_id: str, side: OrderSide, quantity: str, price: str, **options: object) -> BookOrderRequest:
    return BookOrderRequest(order_id, "trader", side, Decimal(quantity), Decimal(price), **options)  # type: ignore[arg-type]


def market(order_id: str, side: OrderSide, quantity: str, **options: object) -> BookOrderRequest:
    return BookOrderRequest(
        order_id,
        "trader",
        side,
        Decimal(quantity),
        order_type=OrderType.MARKET,
        **options,  # type: ignore[arg-type]
    )


def book_with_asks(*asks: tuple[str, str, str]) -> OrderBook:
    book = OrderBook("BTC/USDT")
    for order_id, quantity, price in asks:
        book.submit(limit(order_id, SELL, quantity, price))
    return book


# -- examples ------------------------------------------------------------------------------------


def test_limit_buy_takes_better_prices_first_then_earlier_orders() -> None:
    book = book_with_asks(("a1", "1", "101"), ("a2", "1", "100"), ("a3", "1", "100"))

    result = book.submit(limit("b", BUY, "2.5", "101"))

    assert [(f.maker_order_id, f.price, f.quantity) for f in result.fills] == [
        ("a2", Decimal("100"), Decimal("1")),
        ("a3", Decimal("100"), Decimal("1")),
        ("a1", Decimal("101"), Decimal("0.5")),
    ]
    assert result.outcome is SubmitOutcome.FILLED
    assert result.filled_quantity == Decimal("2.5")
    assert all(f.taker_side is BUY and f.maker_side is SELL for f in result.fills)
    assert book.get("a1") is not None and book.get("a1").remaining == Decimal("0.5")
    assert book.best_ask() == Decimal("101")


def test_limit_remainder_rests_at_its_price() -> None:
    book = book_with_asks(("a1", "1", "100"))

    result = book.submit(limit("b", BUY, "3", "100"))

    assert result.outcome is SubmitOutcome.RESTING
    assert (result.filled_quantity, result.resting_quantity, result.canceled_quantity) == (
        Decimal("1"),
        Decimal("2"),
        Decimal("0"),
    )
    assert book.best_bid() == Decimal("100") and book.best_ask() is None
    assert book.depth(5).bids == [PriceLevel(Decimal("100"), Decimal("2"), 1)]


def test_ioc_remainder_is_canceled() -> None:
    book = book_with_asks(("a1", "1", "100"), ("a2", "1", "102"))

    result = book.submit(limit("b", BUY, "3", "101", time_in_force=TimeInForce.IOC))

    assert result.outcome is SubmitOutcome.CANCELED
    assert (result.filled_quantity, result.canceled_quantity) == (Decimal("1"), Decimal("2"))
    assert book.best_bid() is None and "b" not in book


def test_fok_that_cannot_fill_completely_is_rejected_and_changes_nothing() -> None:
    book = book_with_asks(("a1", "1", "100"), ("a2", "1", "102"))

    result = book.submit(limit("b", BUY, "2", "101", time_in_force=TimeInForce.FOK))

    assert result.outcome is SubmitOutcome.REJECTED
    assert result.reason == "fill-or-kill order cannot be filled completely"
    assert result.fills == []
    assert book.get("a1").remaining == Decimal("1")


def test_fok_that_can_fill_fills_completely() -> None:
    book = book_with_asks(("a1", "1", "100"), ("a2", "1", "102"))

    result = book.submit(limit("b", BUY, "1.5", "102", time_in_force=TimeInForce.FOK))

    assert result.outcome is SubmitOutcome.FILLED
    assert [f.quantity for f in result.fills] == [Decimal("1"), Decimal("0.5")]


def test_post_only_that_would_take_is_rejected() -> None:
    book = book_with_asks(("a1", "1", "100"))

    result = book.submit(limit("b", BUY, "1", "100", post_only=True))

    assert result.outcome is SubmitOutcome.REJECTED
    assert result.reason == "post-only order would take liquidity"
    assert book.best_bid() is None and book.get("a1").remaining == Decimal("1")


def test_post_only_that_does_not_cross_rests() -> None:
    book = book_with_asks(("a1", "1", "100"))

    result = book.submit(limit("b", BUY, "1", "99.9", post_only=True))

    assert result.outcome is SubmitOutcome.RESTING and book.best_bid() == Decimal("99.9")


def test_market_order_walks_the_book_and_cancels_what_is_left() -> None:
    book = book_with_asks(("a1", "1", "100"), ("a2", "2", "105"))

    result = book.submit(market("m", BUY, "4"))

    assert [(f.price, f.quantity) for f in result.fills] == [
        (Decimal("100"), Decimal("1")),
        (Decimal("105"), Decimal("2")),
    ]
    assert result.outcome is SubmitOutcome.CANCELED and result.canceled_quantity == Decimal("1")
    assert len(book) == 0


def test_market_order_on_an_empty_side_is_canceled_whole() -> None:
    result = OrderBook("X").submit(market("m", SELL, "1"))

    assert result.outcome is SubmitOutcome.CANCELED and result.canceled_quantity == Decimal("1")


def test_cancel_returns_the_resting_order_once() -> None:
    book = book_with_asks(("a1", "1", "100"))
    book.submit(limit("b", BUY, "0.4", "100"))

    canceled = book.cancel("a1")

    assert canceled is not None and canceled.remaining == Decimal("0.6") and canceled.filled == Decimal("0.4")
    assert book.cancel("a1") is None and book.best_ask() is None


def test_duplicate_resting_order_id_is_refused() -> None:
    book = book_with_asks(("a1", "1", "100"))

    with pytest.raises(DuplicateOrderId):
        book.submit(limit("a1", SELL, "1", "101"))


def test_amend_down_keeps_time_priority() -> None:
    book = book_with_asks(("a1", "2", "100"), ("a2", "1", "100"))

    amended = book.amend("a1", Decimal("1"))
    result = book.submit(limit("b", BUY, "1", "100"))

    assert amended.kept_priority
    assert [f.maker_order_id for f in result.fills] == ["a1"]


@pytest.mark.parametrize(
    ("first_price", "quantity", "price"), [("99", "3", None), ("100", None, "99"), ("100", "1", "99")]
)
def test_amend_up_or_to_a_new_price_loses_time_priority(
    first_price: str, quantity: str | None, price: str | None
) -> None:
    book = book_with_asks(("a1", "2", first_price), ("a2", "1", "99"))

    amended = book.amend(
        "a1", None if quantity is None else Decimal(quantity), None if price is None else Decimal(price)
    )
    result = book.submit(limit("b", BUY, "1", "99"))

    assert not amended.kept_priority
    assert [f.maker_order_id for f in result.fills] == ["a2"]


def test_amend_quantity_counts_what_is_filled() -> None:
    book = book_with_asks(("a1", "2", "100"))
    book.submit(limit("b", BUY, "1.5", "100"))

    amended = book.amend("a1", Decimal("3"))

    assert amended.quantity == Decimal("3") and book.get("a1").remaining == Decimal("1.5")
    with pytest.raises(AmendRejected):
        book.amend("a1", Decimal("1.5"))
    assert book.get("a1").quantity == Decimal("3")


def test_amend_to_a_crossing_price_trades_as_taker() -> None:
    book = book_with_asks(("a1", "1", "101"))
    book.submit(limit("b", BUY, "2", "100"))

    amended = book.amend("b", price=Decimal("101"))

    assert [(f.maker_order_id, f.taker_order_id, f.price) for f in amended.fills] == [("a1", "b", Decimal("101"))]
    assert amended.resting and book.best_bid() == Decimal("101") and book.best_ask() is None


def test_amend_of_a_post_only_order_that_would_take_is_rejected() -> None:
    book = book_with_asks(("a1", "1", "101"))
    book.submit(limit("b", BUY, "1", "100", post_only=True))

    with pytest.raises(AmendRejected):
        book.amend("b", price=Decimal("101"))
    assert book.get("b").price == Decimal("100")


def test_amend_of_an_unknown_order_raises() -> None:
    with pytest.raises(OrderNotResting):
        OrderBook("X").amend("nope", Decimal("1"))


def test_expire_removes_gtd_orders_that_are_due() -> None:
    book = OrderBook("X")
    book.submit(limit("g1", BUY, "1", "99", time_in_force=TimeInForce.GTD, expire_at=T0 + timedelta(minutes=1)))
    book.submit(limit("g2", BUY, "1", "98", time_in_force=TimeInForce.GTD, expire_at=T0 + timedelta(minutes=5)))

    assert book.expire(T0) == []
    expired = book.expire(T0 + timedelta(minutes=1))

    assert [order.order_id for order in expired] == ["g1"]
    assert book.best_bid() == Decimal("98")


def test_depth_aggregates_levels_best_first() -> None:
    book = book_with_asks(("a1", "1", "101"), ("a2", "2", "100"), ("a3", "0.5", "100"))
    book.submit(limit("b1", BUY, "1", "98"))
    book.submit(limit("b2", BUY, "1", "99"))

    depth = book.depth(1)

    assert depth.asks == [PriceLevel(Decimal("100"), Decimal("2.5"), 2)]
    assert depth.bids == [PriceLevel(Decimal("99"), Decimal("1"), 1)]


@pytest.mark.parametrize(
    "fields",
    [
        {"quantity": Decimal("0"), "price": Decimal("100")},
        {"quantity": Decimal("1"), "price": None},
        {"quantity": Decimal("1"), "price": Decimal("-1")},
        {"quantity": Decimal("1"), "price": Decimal("100"), "order_type": OrderType.MARKET},
        {"quantity": Decimal("1"), "price": Decimal("100"), "order_type": OrderType.STOP_LIMIT},
    ],
)
def test_invalid_book_requests_cannot_be_built(fields: dict) -> None:
    with pytest.raises(ValueError):
        BookOrderRequest("o", "trader", BUY, **fields)


# -- properties: a naive reference model and the invariants ---------------------------------------


@dataclass
class _Ref:
    order_id: str
    side: OrderSide
    price: Decimal
    quantity: Decimal
    remaining: Decimal
    sequence: int
    post_only: bool
    expire_at: datetime | None


class ReferenceBook:
    """The obvious O(n) implementation of the same rules, to compare the fast book against."""

    def __init__(self) -> None:
        self.orders: list[_Ref] = []
        self.sequence = 0

    def _contra(self, side: OrderSide, price: Decimal | None) -> list[_Ref]:
        contra = [o for o in self.orders if o.side is not side]
        if price is not None:
            contra = [o for o in contra if (o.price <= price if side is BUY else o.price >= price)]
        return sorted(contra, key=lambda o: (o.price if side is BUY else -o.price, o.sequence))

    def _take(self, taker: str, side: OrderSide, price: Decimal | None, quantity: Decimal) -> tuple[list, Decimal]:
        fills = []
        for maker in self._contra(side, price):
            if not quantity:
                break
            traded = min(maker.remaining, quantity)
            maker.remaining -= traded
            quantity -= traded
            fills.append((maker.order_id, taker, maker.price, traded))
        self.orders = [o for o in self.orders if o.remaining]
        return fills, quantity

    def submit(self, request: BookOrderRequest) -> tuple[SubmitOutcome, list]:
        price = request.price if request.order_type is OrderType.LIMIT else None
        contra = self._contra(request.side, price)
        if request.post_only and (price is None or contra):
            return SubmitOutcome.REJECTED, []
        if (
            request.time_in_force is TimeInForce.FOK
            and sum((o.remaining for o in contra), Decimal(0)) < request.quantity
        ):
            return SubmitOutcome.REJECTED, []
        fills, remaining = self._take(request.order_id, request.side, price, request.quantity)
        if not remaining:
            return SubmitOutcome.FILLED, fills
        if price is None or request.time_in_force in (TimeInForce.IOC, TimeInForce.FOK):
            return SubmitOutcome.CANCELED, fills
        self.sequence += 1
        self.orders.append(
            _Ref(
                request.order_id,
                request.side,
                price,
                request.quantity,
                remaining,
                self.sequence,
                request.post_only,
                request.expire_at,
            )
        )
        return SubmitOutcome.RESTING, fills

    def find(self, order_id: str) -> _Ref | None:
        return next((o for o in self.orders if o.order_id == order_id), None)

    def cancel(self, order_id: str) -> Decimal | None:
        order = self.find(order_id)
        if order is None:
            return None
        self.orders.remove(order)
        return order.remaining

    def amend(self, order_id: str, quantity: Decimal | None, price: Decimal | None) -> list | str:
        order = self.find(order_id)
        if order is None:
            return "not resting"
        new_quantity = order.quantity if quantity is None else quantity
        new_price = order.price if price is None else price
        filled = order.quantity - order.remaining
        if new_quantity <= filled:
            return "rejected"
        crosses = bool(self._contra(order.side, new_price))
        if crosses and order.post_only:
            return "rejected"
        keeps = new_price == order.price and new_quantity <= order.quantity
        order.quantity, order.remaining, order.price = new_quantity, new_quantity - filled, new_price
        if keeps:
            return []
        self.orders.remove(order)
        fills, order.remaining = self._take(order_id, order.side, new_price, order.remaining)
        if order.remaining:
            self.sequence += 1
            order.sequence = self.sequence
            self.orders.append(order)
        return fills

    def expire(self, now: datetime) -> list[str]:
        due = sorted(
            (o for o in self.orders if o.expire_at is not None and o.expire_at <= now), key=lambda o: o.sequence
        )
        self.orders = [o for o in self.orders if o not in due]
        return [o.order_id for o in due]

    def resting(self) -> list[tuple[str, Decimal, Decimal]]:
        bids = sorted((o for o in self.orders if o.side is BUY), key=lambda o: (-o.price, o.sequence))
        asks = sorted((o for o in self.orders if o.side is SELL), key=lambda o: (o.price, o.sequence))
        return [(o.order_id, o.price, o.remaining) for o in bids + asks]


prices = st.integers(95, 105).map(Decimal)
quantities = st.integers(1, 30).map(lambda n: Decimal(n) / 10)
submits = st.tuples(
    st.just("submit"),
    st.sampled_from([BUY, SELL]),
    st.sampled_from([OrderType.LIMIT] * 4 + [OrderType.MARKET]),
    quantities,
    prices,
    st.sampled_from([TimeInForce.GTC] * 3 + [TimeInForce.IOC, TimeInForce.FOK, TimeInForce.GTD]),
    st.sampled_from([False, False, False, True]),
    st.integers(1, 10),
)
operations = st.lists(
    st.one_of(
        submits,
        submits,
        st.tuples(st.just("cancel"), st.integers(0, 200)),
        st.tuples(st.just("amend"), st.integers(0, 200), st.none() | quantities, st.none() | prices),
        st.tuples(st.just("expire"), st.integers(0, 10)),
    ),
    min_size=20,
    max_size=100,
)


@settings(max_examples=300, deadline=None)
@given(operations)
def test_any_sequence_keeps_priority_conservation_and_an_uncrossed_book(ops: list[tuple]) -> None:
    book, reference = OrderBook("X"), ReferenceBook()
    submitted: dict[str, Decimal] = {}  # order id -> current total quantity
    filled: dict[str, Decimal] = {}
    canceled: dict[str, Decimal] = {}
    sequence_at_rest: dict[str, int] = {}

    def book_fills(fills: list) -> list:
        for fill in fills:
            for order_id in (fill.maker_order_id, fill.taker_order_id):
                filled[order_id] = filled.get(order_id, Decimal(0)) + fill.quantity
        return [(f.maker_order_id, f.taker_order_id, f.price, f.quantity) for f in fills]

    for number, op in enumerate(ops):
        ids = list(submitted)
        if op[0] == "submit":
            _, side, order_type, quantity, price, tif, post_only, minutes = op
            request = BookOrderRequest(
                f"o{number}",
                "trader",
                side,
                quantity,
                price if order_type is OrderType.LIMIT else None,
                order_type,
                tif,
                post_only,
                T0 + timedelta(minutes=minutes) if tif is TimeInForce.GTD else None,
            )
            result = book.submit(request)
            outcome, expected = reference.submit(request)
            assert result.outcome is outcome
            event(f"submit {outcome.value}")
            event(f"{min(len(result.fills), 3)}+ fills in one submit")
            assert book_fills(result.fills) == expected
            assert result.quantity == result.filled_quantity + result.resting_quantity + result.canceled_quantity
            # better prices first, then earlier orders at one price
            keys = [(f.price if side is BUY else -f.price, sequence_at_rest[f.maker_order_id]) for f in result.fills]
            assert keys == sorted(keys)
            if outcome is not SubmitOutcome.REJECTED:
                submitted[request.order_id] = quantity
                canceled[request.order_id] = result.canceled_quantity
            if outcome is SubmitOutcome.RESTING:
                sequence_at_rest[request.order_id] = book.get(request.order_id).sequence
        elif op[0] == "cancel" and ids:
            order_id = ids[op[1] % len(ids)]
            order = book.cancel(order_id)
            expected_remaining = reference.cancel(order_id)
            assert (order.remaining if order else None) == expected_remaining
            if order is not None:
                canceled[order_id] += order.remaining
        elif op[0] == "amend" and ids:
            order_id = ids[op[1] % len(ids)]
            expected = reference.amend(order_id, op[2], op[3])
            try:
                amended = book.amend(order_id, op[2], op[3])
            except OrderNotResting:
                assert expected == "not resting"
            except AmendRejected:
                assert expected == "rejected"
            else:
                event("amend applied, crossing" if amended.fills else "amend applied")
                assert book_fills(amended.fills) == expected
                submitted[order_id] = amended.quantity
                if amended.resting:
                    sequence_at_rest[order_id] = book.get(order_id).sequence
        elif op[0] == "expire":
            now = T0 + timedelta(minutes=op[1])
            expired = book.expire(now)
            assert [o.order_id for o in expired] == reference.expire(now)
            event(f"expired {min(len(expired), 2)}+")
            for order in expired:
                canceled[order.order_id] += order.remaining

        bid, ask = book.best_bid(), book.best_ask()
        assert bid is None or ask is None or bid < ask
        assert [(o.order_id, o.price, o.remaining) for o in book.orders()] == reference.resting()
        for order_id, total in submitted.items():
            resting = book.get(order_id)
            resting_quantity = resting.remaining if resting else Decimal(0)
            assert total == filled.get(order_id, Decimal(0)) + resting_quantity + canceled[order_id]
