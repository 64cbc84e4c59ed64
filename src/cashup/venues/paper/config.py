"""Settings of the paper exchange, built by the caller (the settings object at the edge)."""

from dataclasses import dataclass, field
from decimal import Decimal

from cashup.venues.paper.faults import FaultConfig
from cashup.venues.paper.liquidity import LiquidityConfig


@dataclass(frozen=True, slots=True)
class PaperExchangeConfig:
    """Settings of the paper exchange: its simulator, its journal, its timer and its faults."""

    seed: int = 1
    maker_fee_rate: Decimal = Decimal("0.001")
    taker_fee_rate: Decimal = Decimal("0.001")
    tick_seconds: float = 0.25
    """Real seconds between two market-data ticks while ``start``-ed."""
    replay_speed: float = 1.0
    """Bars of market time per second of real time (each bar is walked in four steps)."""
    manual: bool = False
    """No timer: the market moves only when ``advance`` is called (tests own the market's time)."""
    replay_symbol: str = "BTC/USDT"
    """The instrument fed by the bundled bars; every other instrument follows a random walk."""
    replay_start_bar: int = 0
    random_walk_starts: tuple[tuple[str, Decimal], ...] = (("ETH/USDT", Decimal("3700")),)
    random_walk_volatility_bps: Decimal = Decimal("5")
    """Standard deviation of one random-walk step, in basis points of the price."""
    liquidity: LiquidityConfig = field(default_factory=LiquidityConfig)
    journal_path: str | None = None
    """SQLite file of the exchange's own durable state; ``None`` keeps it in memory only."""
    faults: FaultConfig = field(default_factory=FaultConfig)
    report_history: int = 10_000
    """How many of the latest reports ``reports_after`` can still return."""
    market_history_steps: int = 100_000
    """How many price steps per symbol the market VWAP can look back over."""
    snapshot_every_steps: int = 2_000
    snapshot_every_commands: int = 1_000
    """A journaled exchange saves a snapshot after this many steps or order commands (replay starts there); with
    more than four times as many orders kept, after a quarter of their number of commands."""
