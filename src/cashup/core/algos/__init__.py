"""Execution algorithms: pure decision code that says which child orders to place, cancel or resize.

The worker drives them — it persists ``Decision.state``, applies the actions and calls ``decide`` again at
``next_wake_at`` or when a child changes. Nothing here sends, sleeps or reads the clock.
"""

from cashup.core.algos.base import (
    PAUSED,
    Action,
    Algorithm,
    CancelChild,
    ChildRole,
    ChildView,
    Decision,
    MarketView,
    PlaceChild,
    ResizeChild,
    average_fill_price,
    child_client_order_id,
)
from cashup.core.algos.contingent import BracketAlgorithm, OcoAlgorithm, OcoLeg
from cashup.core.algos.iceberg import DEFAULT_VISIBLE_RATIO, IcebergAlgorithm, IcebergProgress
from cashup.core.algos.triggers import TrailingStop, should_trigger, triggered_order_type
from cashup.core.algos.twap import TwapAlgorithm, TwapProgress, market_vwap, slippage_bps

__all__ = [
    "DEFAULT_VISIBLE_RATIO",
    "PAUSED",
    "Action",
    "Algorithm",
    "BracketAlgorithm",
    "CancelChild",
    "ChildRole",
    "ChildView",
    "Decision",
    "IcebergAlgorithm",
    "IcebergProgress",
    "MarketView",
    "OcoAlgorithm",
    "OcoLeg",
    "PlaceChild",
    "ResizeChild",
    "TrailingStop",
    "TwapAlgorithm",
    "TwapProgress",
    "average_fill_price",
    "child_client_order_id",
    "market_vwap",
    "should_trigger",
    "slippage_bps",
    "triggered_order_type",
]
