"""Matching throughput: ``cashup.core.matching.OrderBook`` against a minimal dict-of-deques matcher.

Both consume the same seeded stream of limit orders, market orders and cancels (SPEC §12, target:
the project's book reaches at least 70% of the baseline's orders per second). Run::

    .venv/bin/python benchmarks/bench_matching.py [--operations 200000] [--rounds 5] [--seed 7]

Each matcher is run ``rounds`` times on a fresh book, alternately; the best round of each counts
(least disturbed by the machine) and the median of the per-round ratios is printed too. The baseline
has no features beyond price-time matching: no order types other than limit and market, no result
objects, no validation, no expiry; it keeps sorted price lists, so it is not slowed by scanning for
the best price. Both get their input ready-made before the clock starts: the
baseline its tuples, the book its ``BookOrderRequest`` objects (validated when they are built).
"""

import argparse
import gc
import random
import statistics
import time
from bisect import insort
from collections import deque
from decimal import Decimal

from cashup.core.enums import OrderSide, OrderType
from cashup.core.matching import BookOrderRequest, OrderBook

LIMIT, MARKET, CANCEL = "limit", "market", "cancel"


class MinimalMatcher:
    """Price-time matching with dicts of deques and sorted price lists; orders are ``[id, price, remaining]``."""

    def __init__(self) -> None:
        self.bid_levels: dict[Decimal, deque[list]] = {}
        self.ask_levels: dict[Decimal, deque[list]] = {}
        self.bid_prices: list[Decimal] = []  # ascending, best last
        self.ask_prices: list[Decimal] = []  # ascending, best first
        self.orders: dict[str, tuple[bool, list]] = {}

    def submit(self, order_id: str, is_buy: bool, quantity: Decimal, price: Decimal | None) -> list[tuple]:
        fills: list[tuple] = []
        if is_buy:
            levels, prices, index = self.ask_levels, self.ask_prices, 0
        else:
            levels, prices, index = self.bid_levels, self.bid_prices, -1
        while quantity and prices:
            best = prices[index]
            if price is not None and (best > price if is_buy else best < price):
                break
            level = levels[best]
            while level and quantity:
                maker = level[0]
                traded = min(maker[2], quantity)
                maker[2] -= traded
                quantity -= traded
                fills.append((maker[0], order_id, best, traded))
                if not maker[2]:
                    level.popleft()
                    del self.orders[maker[0]]
            if not level:
                del levels[best]
                del prices[index]
        if quantity and price is not None:
            own_levels, own_prices = (
                (self.bid_levels, self.bid_prices) if is_buy else (self.ask_levels, self.ask_prices)
            )
            order = [order_id, price, quantity]
            level = own_levels.get(price)
            if level is None:
                level = own_levels[price] = deque()
                insort(own_prices, price)
            level.append(order)
            self.orders[order_id] = (is_buy, order)
        return fills

    def cancel(self, order_id: str) -> bool:
        entry = self.orders.pop(order_id, None)
        if entry is None:
            return False
        is_buy, order = entry
        levels, prices = (self.bid_levels, self.bid_prices) if is_buy else (self.ask_levels, self.ask_prices)
        level = levels[order[1]]
        level.remove(order)
        if not level:
            del levels[order[1]]
            prices.remove(order[1])
        return True


def make_stream(operations: int, seed: int) -> list[tuple]:
    """Limit orders around a drifting mid (70%), market orders (10%) and cancels of earlier ids (20%)."""
    rng = random.Random(seed)
    tick = Decimal("0.1")
    mid_ticks = 460_000
    stream: list[tuple] = []
    issued: list[str] = []
    for number in range(operations):
        roll = rng.random()
        mid_ticks += rng.choice((-1, 0, 1))
        if roll < 0.2 and issued:
            stream.append((CANCEL, issued[rng.randrange(len(issued))]))
            continue
        order_id = f"o{number}"
        is_buy = rng.random() < 0.5
        quantity = Decimal(rng.randint(1, 200)) * Decimal("0.001")
        if roll < 0.3:
            stream.append((MARKET, order_id, is_buy, quantity, None))
        else:
            offset = int(rng.gauss(0, 15))
            price_ticks = mid_ticks - abs(offset) + 2 if is_buy else mid_ticks + abs(offset) - 2
            stream.append((LIMIT, order_id, is_buy, quantity, price_ticks * tick))
        issued.append(order_id)
    return stream


def run_baseline(stream: list[tuple]) -> tuple[float, int]:
    matcher = MinimalMatcher()
    submit, cancel = matcher.submit, matcher.cancel
    fills = 0
    started = time.perf_counter()
    for operation in stream:
        if operation[0] == CANCEL:
            cancel(operation[1])
        else:
            fills += len(submit(operation[1], operation[2], operation[3], operation[4]))
    return time.perf_counter() - started, fills


def book_requests(stream: list[tuple]) -> list[tuple[bool, object]]:
    """The same stream as ``(is_cancel, order id or BookOrderRequest)`` pairs."""
    requests: list[tuple[bool, object]] = []
    for operation in stream:
        if operation[0] == CANCEL:
            requests.append((True, operation[1]))
        else:
            kind, order_id, is_buy, quantity, price = operation
            side = OrderSide.BUY if is_buy else OrderSide.SELL
            order_type = OrderType.MARKET if kind == MARKET else OrderType.LIMIT
            requests.append((False, BookOrderRequest(order_id, "bench", side, quantity, price, order_type)))
    return requests


def run_book(requests: list[tuple[bool, object]]) -> tuple[float, int]:
    book = OrderBook("BTC/USDT")
    submit, cancel = book.submit, book.cancel
    fills = 0
    started = time.perf_counter()
    for is_cancel, payload in requests:
        if is_cancel:
            cancel(payload)  # type: ignore[arg-type]
        else:
            fills += len(submit(payload).fills)  # type: ignore[arg-type]
    return time.perf_counter() - started, fills


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--operations", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    arguments = parser.parse_args()

    stream = make_stream(arguments.operations, arguments.seed)
    requests = book_requests(stream)
    baseline_times: list[float] = []
    book_times: list[float] = []
    baseline_fills = book_fills = 0
    for _ in range(arguments.rounds):
        gc.collect()
        elapsed, baseline_fills = run_baseline(stream)
        baseline_times.append(elapsed)
        gc.collect()
        elapsed, book_fills = run_book(requests)
        book_times.append(elapsed)
    if baseline_fills != book_fills:
        raise SystemExit(f"matchers disagree: baseline made {baseline_fills} fills, the book {book_fills}")

    count = len(stream)
    baseline_rate = count / min(baseline_times)
    book_rate = count / min(book_times)
    paired = statistics.median(base / book for base, book in zip(baseline_times, book_times, strict=True))
    print(f"stream: {count} operations (seed {arguments.seed}), {book_fills} fills, best of {arguments.rounds} rounds")
    print(f"{'matcher':<32}{'orders/s':>14}")
    print(f"{'minimal dict-of-deques baseline':<32}{baseline_rate:>14,.0f}")
    print(f"{'cashup.core.matching.OrderBook':<32}{book_rate:>14,.0f}")
    ratio = book_rate / baseline_rate
    print(f"ratio book / baseline: {ratio:.2f} best-of, {paired:.2f} median of rounds (target >= 0.70)")


if __name__ == "__main__":
    main()
