"""Synthetic resting liquidity: a market maker's ladder of orders around the current price.

On every price move the ladder is canceled and placed again around the new price. A re-placed ladder
order that crosses someone else's resting order trades against it at that order's price (the resting
order is the maker), so a resting limit buy fills when the market falls through it, as it would on a
real venue. Sizes come from a seeded ``random.Random``: the same seed gives the same book.
"""

import random
from dataclasses import dataclass
from decimal import Decimal

from cashup.core.enums import OrderSide
from cashup.core.instruments import Instrument
from cashup.core.matching import BookOrderRequest, Fill, OrderBook
from cashup.core.money import BPS, ONE, round_down_to_step, round_up_to_step

LIQUIDITY_OWNER = "liquidity"
_JITTER_STEPS = 1000


@dataclass(frozen=True, slots=True)
class LiquidityConfig:
    """Shape of the synthetic book.

    Level ``i`` (0 = nearest) sits ``(i + 1/2) × spacing`` from the price, where spacing is
    ``spacing_bps`` of the price but at least one tick, and holds about
    ``level_notional × (1 + depth_growth × i)`` of quote value, varied by up to ``± size_jitter``.
    """

    levels: int = 20
    spacing_bps: Decimal = Decimal("1")
    level_notional: Decimal = Decimal("10000")
    depth_growth: Decimal = Decimal("0.25")
    size_jitter: Decimal = Decimal("0.5")


class SyntheticLiquidity:
    """Keeps one market maker's ladder of bids and asks in a book, centered on the latest price."""

    def __init__(self, book: OrderBook, instrument: Instrument, config: LiquidityConfig, rng: random.Random) -> None:
        self._book = book
        self._instrument = instrument
        self._config = config
        self._rng = rng
        self._order_ids: list[str] = []
        self._placed = 0

    @property
    def order_ids(self) -> list[str]:
        return list(self._order_ids)

    def refresh(self, price: Decimal) -> list[Fill]:
        """Replace the ladder around ``price``; return the fills it made against other resting orders."""
        book = self._book
        for order_id in self._order_ids:
            book.cancel(order_id)
        self._order_ids = []
        fills: list[Fill] = []
        for side, level_price, quantity in self._ladder(price):
            self._placed += 1
            order_id = f"{LIQUIDITY_OWNER}-{self._placed}"
            result = book.submit(BookOrderRequest(order_id, LIQUIDITY_OWNER, side, quantity, level_price))
            fills.extend(result.fills)
            if result.resting_quantity:
                self._order_ids.append(order_id)
        return fills

    def _ladder(self, price: Decimal) -> list[tuple[OrderSide, Decimal, Decimal]]:
        """Bids then asks, nearest level first; prices on the tick, sizes on the lot."""
        config = self._config
        tick = self._instrument.tick_size
        spacing = max(tick, price * config.spacing_bps * BPS)
        ladder = []
        for side in (OrderSide.BUY, OrderSide.SELL):
            for level in range(config.levels):
                distance = (level + Decimal("0.5")) * spacing
                if side is OrderSide.BUY:
                    level_price = round_down_to_step(price - distance, tick)
                    if level_price <= 0:
                        break
                else:
                    level_price = round_up_to_step(price + distance, tick)
                ladder.append((side, level_price, self._level_quantity(level, level_price)))
        return ladder

    def _level_quantity(self, level: int, price: Decimal) -> Decimal:
        config = self._config
        jitter = Decimal(self._rng.randint(-_JITTER_STEPS, _JITTER_STEPS)) / _JITTER_STEPS * config.size_jitter
        notional = config.level_notional * (ONE + config.depth_growth * level) * (ONE + jitter)
        quantity = round_down_to_step(notional / price, self._instrument.lot_size)
        return max(quantity, self._instrument.min_quantity)
