"""The built-in paper exchange: a real matching engine per symbol fed by replayed or simulated prices."""

from cashup.venues.paper.exchange import PaperExchange, PaperExchangeConfig
from cashup.venues.paper.liquidity import LiquidityConfig

__all__ = ["LiquidityConfig", "PaperExchange", "PaperExchangeConfig"]
