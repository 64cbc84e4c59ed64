"""Price feeds of the paper exchange: a replay of real 1-minute bars and a seeded random walk.

A feed moves one *step* at a time. A bar is walked in ``STEPS_PER_BAR`` steps — open, the nearer
extreme, the other extreme, close — so a price moves through a bar's range the way it plausibly
traded, one quarter of a minute of market time per step. The random walk takes steps of the same
length. The replay data ships inside the package (``data/btc-usdt-1m.csv.gz``: the first three days
of January 2022, BTC-PERP on FTX); nothing outside the package is read.
"""

import csv
import gzip
import io
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Protocol

from cashup.core.money import BPS, round_to_step

STEPS_PER_BAR = 4
STEP_DURATION = timedelta(seconds=60 / STEPS_PER_BAR)
BUNDLED_BARS = "btc-usdt-1m.csv.gz"


@dataclass(frozen=True, slots=True)
class Bar:
    """One OHLCV bar; ``timestamp`` is the bar's open time (UTC)."""

    timestamp: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal

    def path(self) -> tuple[Decimal, Decimal, Decimal, Decimal]:
        """The four prices a bar is walked through: open, the extreme nearer the open, the other, close."""
        if self.open - self.low <= self.high - self.open:
            return self.open, self.low, self.high, self.close
        return self.open, self.high, self.low, self.close


@cache
def load_bundled_bars(name: str = BUNDLED_BARS) -> tuple[Bar, ...]:
    """Read bars shipped in ``cashup/venues/paper/data`` (gzip CSV: ``timestamp,open,high,low,close,volume``)."""
    raw = (resources.files("cashup.venues.paper") / "data" / name).read_bytes()
    return tuple(parse_bars(gzip.decompress(raw).decode("utf-8")))


def parse_bars(text: str) -> list[Bar]:
    bars = []
    for row in csv.DictReader(io.StringIO(text)):
        timestamp = datetime.fromisoformat(row["timestamp"])
        if timestamp.tzinfo is None:
            timestamp = timestamp.replace(tzinfo=UTC)
        bars.append(
            Bar(
                timestamp,
                Decimal(row["open"]),
                Decimal(row["high"]),
                Decimal(row["low"]),
                Decimal(row["close"]),
                Decimal(row["volume"]),
            )
        )
    return bars


class PriceFeed(Protocol):
    """A source of prices for one instrument, moved forward one step at a time.

    A feed may also have a ``step_volume`` (the market volume traded during its latest step), used to
    weigh the market VWAP; without one every step weighs the same.
    """

    @property
    def price(self) -> Decimal: ...

    def step(self) -> Decimal: ...


class BarReplay:
    """Replay bars step by step, quantized to ``tick_size``; after the last bar it starts over."""

    def __init__(self, bars: Sequence[Bar], tick_size: Decimal, start_bar: int = 0) -> None:
        if not bars:
            raise ValueError("a replay needs at least one bar")
        self._bars = bars
        self._tick_size = tick_size
        self._bar_index = start_bar % len(bars)
        self._sub_step = 0
        self._price = self._quantize(bars[self._bar_index].open)

    @property
    def price(self) -> Decimal:
        return self._price

    @property
    def bar(self) -> Bar:
        return self._bars[self._bar_index]

    @property
    def step_volume(self) -> Decimal:
        """A quarter of the current bar's volume: the bar's volume spread evenly over its steps."""
        return self.bar.volume / STEPS_PER_BAR

    def __getstate__(self) -> dict[str, object]:
        # The bundled bars are named rather than copied into every pickled snapshot of the exchange.
        state = self.__dict__.copy()
        if self._bars is load_bundled_bars():
            state["_bars"] = BUNDLED_BARS
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        bars = state["_bars"]
        if isinstance(bars, str):
            state["_bars"] = load_bundled_bars(bars)
        self.__dict__.update(state)

    @property
    def market_time(self) -> datetime:
        """The time of the current price inside the replayed data (wraps around with the replay)."""
        return self.bar.timestamp + self._sub_step * STEP_DURATION

    def step(self) -> Decimal:
        self._sub_step += 1
        if self._sub_step == STEPS_PER_BAR:
            self._sub_step = 0
            self._bar_index = (self._bar_index + 1) % len(self._bars)
        self._price = self._quantize(self.bar.path()[self._sub_step])
        return self._price

    def _quantize(self, price: Decimal) -> Decimal:
        return round_to_step(price, self._tick_size)


class RandomWalk:
    """A seeded Gaussian random walk in whole ticks; each step moves about ``volatility_bps`` of the price."""

    def __init__(
        self, start: Decimal, tick_size: Decimal, rng: random.Random, volatility_bps: Decimal = Decimal("5")
    ) -> None:
        self._tick_size = tick_size
        self._rng = rng
        self._volatility = volatility_bps * BPS
        self._ticks = int(round_to_step(start, tick_size) / tick_size)
        if self._ticks <= 0:
            raise ValueError("a random walk starts above zero")

    @property
    def price(self) -> Decimal:
        return self._ticks * self._tick_size

    @property
    def step_volume(self) -> Decimal:
        """A random walk has no volume: every step weighs one, so its VWAP is the time-weighted average."""
        return Decimal(1)

    def step(self) -> Decimal:
        # The float only draws a whole number of ticks; prices stay exact multiples of the tick.
        sigma_ticks = float(self._ticks * self._volatility)
        move = round(self._rng.gauss(0.0, sigma_ticks))
        self._ticks = max(self._ticks + move, 1)
        return self.price
