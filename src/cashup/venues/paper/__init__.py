"""The built-in paper exchange: a real matching engine per symbol fed by replayed or simulated prices.

``simulator`` is the deterministic exchange, ``journal`` its durable memory, ``exchange`` the venue over
both (faults, timer, report delivery), ``server`` and ``wire`` the same exchange served over HTTP.
"""

from cashup.venues.paper.config import PaperExchangeConfig
from cashup.venues.paper.exchange import PaperExchange
from cashup.venues.paper.faults import FaultConfig
from cashup.venues.paper.journal import JournalLocked, JournalMismatch
from cashup.venues.paper.liquidity import LiquidityConfig
from cashup.venues.paper.simulator import PaperSimulator, ReportBatch

__all__ = [
    "FaultConfig",
    "JournalLocked",
    "JournalMismatch",
    "LiquidityConfig",
    "PaperExchange",
    "PaperExchangeConfig",
    "PaperSimulator",
    "ReportBatch",
]
