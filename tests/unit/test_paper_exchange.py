"""The paper exchange: fills against synthetic liquidity, fees, reports, determinism, market data."""

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from cashup.core.enums import Liquidity, OrderSide, OrderType, TimeInForce
from cashup.venues.base import ExecutionReport, ReportKind, VenueOrderRequest, VenueOrderStatus
from cashup.venues.paper import LiquidityConfig, PaperExchange, PaperExchangeConfig
from cashup.venues.paper.market_data import STEPS_PER_BAR, Bar, BarReplay, load_bundled_bars

BTC, ETH = "BTC/USDT", "ETH/USDT"
BUY, SELL = OrderSide.BUY, OrderSide.SELL
T0 = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
FEE_RATE = Decimal("0.001")


class FakeClock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class ScriptedFeed:
    """Prices given in advance, one per step; the last one repeats."""

    def __init__(self, *prices: str) -> None:
        self._prices = [Decimal(price) for price in prices]
        self._index = 0

    @property
    def price(self) -> Decimal:
        return self._prices[self._index]

    def step(self) -> Decimal:
        self._index = min(self._index + 1, len(self._prices) - 1)
        return self.price


def make_exchange(seed: int = 7, **options: object) -> tuple[PaperExchange, list[ExecutionReport], FakeClock]:
    clock = FakeClock()
    exchange = PaperExchange(PaperExchangeConfig(seed=seed), clock=clock, **options)  # type: ignore[arg-type]
    reports: list[ExecutionReport] = []
    exchange.set_report_sink(reports.append)
    return exchange, reports, clock


def market(client_id: str, side: OrderSide, quantity: str, symbol: str = BTC) -> VenueOrderRequest:
    return VenueOrderRequest(client_id, symbol, side, OrderType.MARKET, Decimal(quantity))


def limit(client_id: str, side: OrderSide, quantity: str, price: str, symbol: str = BTC, **options: object):
    return VenueOrderRequest(client_id, symbol, side, OrderType.LIMIT, Decimal(quantity), Decimal(price), **options)  # type: ignore[arg-type]


def kinds(reports: list[ExecutionReport], client_id: str) -> list[ReportKind]:
    return [report.kind for report in reports if report.venue_client_order_id == client_id]


def fills(reports: list[ExecutionReport], client_id: str) -> list[ExecutionReport]:
    return [r for r in reports if r.venue_client_order_id == client_id and r.kind is ReportKind.FILL]


# -- taking liquidity ------------------------------------------------------------------------------


async def test_small_market_buy_fills_completely_near_last_price_with_exact_fee() -> None:
    exchange, reports, _ = make_exchange()
    last = exchange.last_price(BTC)
    assert last == Decimal("46319.0")  # the open of the first bundled bar

    await exchange.submit(market("m1", BUY, "0.01"))

    assert kinds(reports, "m1") == [ReportKind.ACCEPTED, ReportKind.FILL]
    (fill,) = fills(reports, "m1")
    assert fill.quantity == Decimal("0.01")
    assert abs(fill.price - last) / last < Decimal("0.005")
    assert fill.price > last  # a buy lifts the best ask
    assert fill.fee == fill.price * Decimal("0.01") * FEE_RATE
    assert fill.fee_currency == "USDT" and fill.liquidity is Liquidity.TAKER
    assert fill.exchange_order_id == reports[0].exchange_order_id
    state = await exchange.fetch_order("m1", BTC)
    assert state is not None and state.status is VenueOrderStatus.FILLED and state.filled_quantity == Decimal("0.01")


async def test_large_market_buy_walks_several_levels_at_rising_prices() -> None:
    exchange, reports, _ = make_exchange()

    await exchange.submit(market("m1", BUY, "5"))

    walked = fills(reports, "m1")
    assert len(walked) >= 4
    assert [f.price for f in walked] == sorted(f.price for f in walked) and len({f.price for f in walked}) == len(
        walked
    )
    assert sum(f.quantity for f in walked) == Decimal("5")
    notional = sum(f.price * f.quantity for f in walked)
    assert sum(f.fee for f in walked) == notional * FEE_RATE
    assert len({f.execution_id for f in walked}) == len(walked)
    assert kinds(reports, "m1")[-1] is ReportKind.FILL


async def test_market_order_larger_than_the_book_expires_the_remainder() -> None:
    config = PaperExchangeConfig(seed=7, liquidity=LiquidityConfig(levels=2))
    exchange = PaperExchange(config, clock=FakeClock())
    reports: list[ExecutionReport] = []
    exchange.set_report_sink(reports.append)

    await exchange.submit(market("m1", SELL, "50"))

    assert kinds(reports, "m1") == [ReportKind.ACCEPTED, ReportKind.FILL, ReportKind.FILL, ReportKind.EXPIRED]
    state = await exchange.fetch_order("m1", BTC)
    assert state.status is VenueOrderStatus.EXPIRED
    assert state.filled_quantity == sum(f.quantity for f in fills(reports, "m1")) < Decimal("50")


async def test_book_has_the_configured_levels_around_the_price() -> None:
    exchange, _, _ = make_exchange()

    depth = exchange.book(BTC).depth(50)

    assert len(depth.bids) == 20 and len(depth.asks) == 20
    assert depth.bids[0].price < exchange.last_price(BTC) < depth.asks[0].price
    assert all(level.price % Decimal("0.1") == 0 for level in depth.bids + depth.asks)


# -- resting orders and market moves ---------------------------------------------------------------


async def test_limit_buy_far_below_the_market_stays_open() -> None:
    exchange, reports, _ = make_exchange()

    await exchange.submit(limit("l1", BUY, "0.01", "45000.0"))
    exchange.advance(240)

    assert kinds(reports, "l1") == [ReportKind.ACCEPTED]
    (state,) = await exchange.fetch_open_orders(BTC)
    assert state.venue_client_order_id == "l1" and state.filled_quantity == 0
    assert state.status is VenueOrderStatus.OPEN


async def test_limit_buy_fills_at_its_price_when_the_market_falls_through_it() -> None:
    # Bundled bars 0-57 stay above 46252; bar 58 (steps 232-235) dips to 46150.
    exchange, reports, _ = make_exchange()
    await exchange.submit(limit("l1", BUY, "0.01", "46250.0"))

    exchange.advance(230)
    assert kinds(reports, "l1") == [ReportKind.ACCEPTED]

    exchange.advance(8)
    (fill,) = fills(reports, "l1")
    assert fill.price == Decimal("46250.0") and fill.quantity == Decimal("0.01")
    assert fill.liquidity is Liquidity.MAKER and fill.fee == Decimal("46250.0") * Decimal("0.01") * FEE_RATE
    assert (await exchange.fetch_order("l1", BTC)).status is VenueOrderStatus.FILLED
    assert await exchange.fetch_open_orders() == []


async def test_resting_sell_partially_fills_against_displayed_liquidity() -> None:
    feed = ScriptedFeed("100.00", "100.00", "120.00")
    exchange, reports, _ = make_exchange(feeds={ETH: feed})
    await exchange.submit(limit("s1", SELL, "100000", "110.00", symbol=ETH))

    exchange.advance(2)

    partial = fills(reports, "s1")
    assert partial and all(f.price == Decimal("110.00") and f.liquidity is Liquidity.MAKER for f in partial)
    state = await exchange.fetch_order("s1", ETH)
    assert Decimal(0) < state.filled_quantity < Decimal("100000") and state.status is VenueOrderStatus.OPEN


async def test_gtd_order_expires_when_the_clock_passes_expire_at() -> None:
    exchange, reports, clock = make_exchange()
    expire_at = T0 + timedelta(minutes=5)
    await exchange.submit(limit("g1", BUY, "0.01", "45000.0", time_in_force=TimeInForce.GTD, expire_at=expire_at))

    exchange.advance(1)
    assert kinds(reports, "g1") == [ReportKind.ACCEPTED]
    clock.now = expire_at
    exchange.advance(1)

    assert kinds(reports, "g1") == [ReportKind.ACCEPTED, ReportKind.EXPIRED]
    assert reports[-1].at == expire_at
    assert (await exchange.fetch_order("g1", BTC)).status is VenueOrderStatus.EXPIRED


# -- order types -------------------------------------------------------------------------------------


async def test_ioc_limit_fills_what_it_can_and_expires_the_rest() -> None:
    exchange, reports, _ = make_exchange()
    best_ask = exchange.book(BTC).best_ask()

    await exchange.submit(limit("i1", BUY, "3", str(best_ask), time_in_force=TimeInForce.IOC))

    assert kinds(reports, "i1") == [ReportKind.ACCEPTED, ReportKind.FILL, ReportKind.EXPIRED]
    assert fills(reports, "i1")[0].price == best_ask and fills(reports, "i1")[0].quantity < Decimal("3")


async def test_fok_that_cannot_fill_is_accepted_then_expired_without_fills() -> None:
    exchange, reports, _ = make_exchange()
    best_ask = exchange.book(BTC).best_ask()

    await exchange.submit(limit("f1", BUY, "3", str(best_ask), time_in_force=TimeInForce.FOK))

    assert kinds(reports, "f1") == [ReportKind.ACCEPTED, ReportKind.EXPIRED]
    assert "fill-or-kill" in reports[-1].reason


async def test_post_only_that_would_take_is_rejected() -> None:
    exchange, reports, _ = make_exchange()
    best_ask = exchange.book(BTC).best_ask()

    await exchange.submit(limit("p1", BUY, "0.01", str(best_ask), post_only=True))
    await exchange.submit(limit("p2", BUY, "0.01", "46000.0", post_only=True))

    assert kinds(reports, "p1") == [ReportKind.REJECTED] and reports[0].reason == "post-only order would take liquidity"
    assert kinds(reports, "p2") == [ReportKind.ACCEPTED]


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        (limit("x", BUY, "0.01", "46000.05"), "tick size"),
        (limit("x", BUY, "0.000001", "46000.0"), "lot size"),
        (limit("x", BUY, "0.0001", "46000.0"), "below the minimum"),
        (limit("x", BUY, "1", "100", symbol="DOGE/USDT"), "unknown symbol"),
        (VenueOrderRequest("x", BTC, BUY, OrderType.STOP_MARKET, Decimal("1")), "unsupported order type"),
        (limit("x", BUY, "0.01", "46000.0", time_in_force=TimeInForce.GTD), "expire_at"),
    ],
)
async def test_invalid_orders_are_rejected_with_a_reason(request_: VenueOrderRequest, reason: str) -> None:
    exchange, reports, _ = make_exchange()

    await exchange.submit(request_)

    assert [r.kind for r in reports] == [ReportKind.REJECTED]
    assert reason in reports[0].reason
    assert await exchange.fetch_open_orders() == []


# -- duplicates, cancel, amend ------------------------------------------------------------------------


async def test_duplicate_client_order_id_is_rejected_and_recorded_twice() -> None:
    exchange, reports, _ = make_exchange()

    await exchange.submit(limit("d1", BUY, "0.01", "45000.0"))
    await exchange.submit(limit("d1", BUY, "0.02", "45000.0"))

    assert exchange.received_client_order_ids == ["d1", "d1"]
    assert [r.kind for r in reports] == [ReportKind.ACCEPTED, ReportKind.REJECTED]
    assert reports[1].reason == "duplicate client order id"
    (state,) = await exchange.fetch_open_orders()
    assert state.quantity == Decimal("0.01")
    assert len(exchange.book(BTC).depth(50).bids) == 21  # 20 liquidity levels and one order, not two


async def test_cancel_open_order_then_a_second_cancel_is_refused() -> None:
    exchange, reports, _ = make_exchange()
    await exchange.submit(limit("c1", BUY, "0.01", "45000.0"))

    await exchange.cancel("c1", BTC)
    await exchange.cancel("c1", BTC)
    await exchange.cancel("nope", BTC)

    assert kinds(reports, "c1") == [ReportKind.ACCEPTED, ReportKind.CANCELED, ReportKind.CANCEL_REJECTED]
    assert reports[2].reason == "order is already canceled"
    assert kinds(reports, "nope") == [ReportKind.CANCEL_REJECTED]
    assert exchange.book(BTC).best_bid() > Decimal("45000.0") and len(exchange.book(BTC)) == 40


async def test_amend_reports_the_new_total_and_price() -> None:
    exchange, reports, _ = make_exchange()
    await exchange.submit(limit("a1", BUY, "0.01", "45000.0"))

    await exchange.amend("a1", BTC, Decimal("0.02"), Decimal("45100.0"))

    replaced = reports[-1]
    assert replaced.kind is ReportKind.REPLACED
    assert (replaced.quantity, replaced.price) == (Decimal("0.02"), Decimal("45100.0"))
    state = await exchange.fetch_order("a1", BTC)
    assert (state.quantity, state.price) == (Decimal("0.02"), Decimal("45100.0"))


async def test_amend_to_a_crossing_price_fills_as_taker() -> None:
    exchange, reports, _ = make_exchange()
    await exchange.submit(limit("a1", BUY, "0.01", "45000.0"))
    best_ask = exchange.book(BTC).best_ask()

    await exchange.amend("a1", BTC, None, best_ask)

    assert kinds(reports, "a1") == [ReportKind.ACCEPTED, ReportKind.REPLACED, ReportKind.FILL]
    assert reports[-1].liquidity is Liquidity.TAKER and reports[-1].price == best_ask
    assert (await exchange.fetch_order("a1", BTC)).status is VenueOrderStatus.FILLED


async def test_amend_of_unknown_or_final_orders_is_refused() -> None:
    exchange, reports, _ = make_exchange()
    await exchange.submit(market("m1", BUY, "0.01"))

    await exchange.amend("m1", BTC, Decimal("0.02"), None)
    await exchange.amend("nope", BTC, Decimal("0.02"), None)

    assert reports[-2].kind is ReportKind.REPLACE_REJECTED and reports[-2].reason == "order is already filled"
    assert reports[-1].kind is ReportKind.REPLACE_REJECTED and reports[-1].reason == "unknown order"


async def test_amend_below_the_filled_quantity_is_refused() -> None:
    feed = ScriptedFeed("100.00", "100.00", "120.00")
    exchange, reports, _ = make_exchange(feeds={ETH: feed})
    await exchange.submit(limit("s1", SELL, "100000", "110.00", symbol=ETH))
    exchange.advance(2)
    filled = (await exchange.fetch_order("s1", ETH)).filled_quantity

    await exchange.amend("s1", ETH, filled, None)

    assert reports[-1].kind is ReportKind.REPLACE_REJECTED and "filled quantity" in reports[-1].reason


# -- determinism and market data ------------------------------------------------------------------------


async def drive(exchange: PaperExchange) -> None:
    await exchange.submit(market("m1", BUY, "0.5"))
    await exchange.submit(limit("l1", BUY, "0.3", "46250.0"))
    await exchange.submit(limit("e1", SELL, "2", "3705.00", symbol=ETH))
    await exchange.submit(limit("e2", BUY, "2", "3695.00", symbol=ETH))
    exchange.advance(120)
    await exchange.amend("l1", BTC, Decimal("0.4"), None)
    exchange.advance(130)
    await exchange.submit(market("m2", SELL, "1.5", symbol=ETH))
    await exchange.cancel("e1", ETH)


async def test_same_seed_and_calls_give_identical_reports() -> None:
    first, first_reports, _ = make_exchange(seed=42)
    second, second_reports, _ = make_exchange(seed=42)

    await drive(first)
    await drive(second)

    assert first_reports == second_reports
    filled = [r for r in first_reports if r.kind is ReportKind.FILL]
    assert len(filled) >= 5 and {r.liquidity for r in filled} == {Liquidity.MAKER, Liquidity.TAKER}
    assert first.last_price(ETH) == second.last_price(ETH)


async def test_another_seed_moves_the_random_walk_differently() -> None:
    first, _, _ = make_exchange(seed=1)
    second, _, _ = make_exchange(seed=2)

    first.advance(50)
    second.advance(50)

    assert first.last_price(ETH) != second.last_price(ETH)
    assert first.last_price(BTC) == second.last_price(BTC)  # the replay does not depend on the seed
    assert first.last_price(ETH) % Decimal("0.01") == 0


def test_bundled_bars_are_three_days_of_one_minute_bars() -> None:
    bars = load_bundled_bars()

    assert len(bars) == 4320
    assert bars[0].timestamp == datetime(2021, 12, 31, 23, 1, tzinfo=UTC)
    assert bars[-1].timestamp - bars[0].timestamp == timedelta(minutes=4319)
    assert all(bar.low <= min(bar.open, bar.close) and bar.high >= max(bar.open, bar.close) for bar in bars)


def test_replay_walks_each_bar_through_its_range_and_wraps_around() -> None:
    up = Bar(T0, Decimal("10"), Decimal("13"), Decimal("9"), Decimal("12"), Decimal("1"))
    down = Bar(T0 + timedelta(minutes=1), Decimal("12"), Decimal("12.5"), Decimal("8"), Decimal("8.5"), Decimal("1"))
    replay = BarReplay([up, down], tick_size=Decimal("1"))

    path = [replay.price] + [replay.step() for _ in range(2 * STEPS_PER_BAR)]

    assert path == [Decimal(p) for p in ("10", "9", "13", "12", "12", "12", "8", "8", "10")]


async def test_start_advances_the_market_until_stop() -> None:
    config = PaperExchangeConfig(seed=7, tick_seconds=0.01, replay_speed=100.0)
    exchange = PaperExchange(config)
    before = exchange.book(ETH).depth(1)

    await exchange.start()
    await asyncio.sleep(0.1)
    await exchange.stop()
    stopped = exchange.last_price(ETH)
    await asyncio.sleep(0.05)

    assert exchange.book(ETH).depth(1) != before
    assert exchange.last_price(ETH) == stopped


async def test_a_manual_market_runs_no_timer_and_moves_only_when_advanced() -> None:
    reports: list[ExecutionReport] = []
    exchange = PaperExchange(PaperExchangeConfig(seed=7, tick_seconds=0.001, manual=True), clock=lambda: T0)
    exchange.set_report_sink(reports.append)
    price = exchange.last_price(BTC)
    assert price is not None
    await exchange.submit(VenueOrderRequest("manual-1", BTC, OrderSide.BUY, OrderType.LIMIT, Decimal("0.01"),
                                            price - Decimal("1000")))

    await exchange.start()
    timers = [task for task in asyncio.all_tasks() if task.get_name() == "paper-exchange-market-data"]
    untouched = exchange.last_price(BTC)
    exchange.advance(STEPS_PER_BAR)
    await exchange.stop()

    replay = BarReplay(load_bundled_bars(), Decimal("0.1"))
    assert timers == []
    assert untouched == price == replay.price
    assert exchange.last_price(BTC) == [replay.step() for _ in range(STEPS_PER_BAR)][-1]
    assert [report.kind for report in reports] == [ReportKind.ACCEPTED]  # resting far below: no fill
