"""The built-in paper exchange: a real matching engine per symbol fed by replayed or simulated prices."""

from cashup.venues.paper.exchange import PaperExchange, PaperExchangeConfig, ReportBatch
from cashup.venues.paper.faults import FaultConfig
from cashup.venues.paper.journal import JournalLocked, JournalMismatch
from cashup.venues.paper.liquidity import LiquidityConfig

__all__ = [
    "FaultConfig",
    "JournalLocked",
    "JournalMismatch",
    "LiquidityConfig",
    "PaperExchange",
    "PaperExchangeConfig",
    "ReportBatch",
]
