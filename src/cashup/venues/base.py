"""The venue interface every exchange adapter implements, and the messages it exchanges with the engine."""

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from cashup.core.enums import Liquidity, OrderSide, OrderType, TimeInForce
from cashup.core.instruments import Instrument

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class VenueOrderRequest:
    """A market or limit order as sent to a venue. ``venue_client_order_id`` is derived from our order id."""

    venue_client_order_id: str
    symbol: str
    side: OrderSide
    order_type: OrderType
    quantity: Decimal
    price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    post_only: bool = False
    reduce_only: bool = False
    expire_at: datetime | None = None


class ReportKind(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    FILL = "fill"
    CANCELED = "canceled"
    CANCEL_REJECTED = "cancel_rejected"
    REPLACED = "replaced"
    REPLACE_REJECTED = "replace_rejected"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class ExecutionReport:
    """What a venue says happened to one of our orders. Reports of one order arrive in order."""

    kind: ReportKind
    venue_client_order_id: str
    at: datetime
    exchange_order_id: str | None = None
    reason: str | None = None
    execution_id: str | None = None
    quantity: Decimal | None = None
    """Fill quantity for ``FILL``; the new total quantity for ``REPLACED``."""
    price: Decimal | None = None
    """Fill price for ``FILL``; the new limit price for ``REPLACED``."""
    fee: Decimal | None = None
    fee_currency: str | None = None
    liquidity: Liquidity | None = None


class VenueOrderStatus(StrEnum):
    OPEN = "open"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class VenueOrderState:
    """A venue's own view of one order, used to reconcile after a crash or an unknown outcome."""

    venue_client_order_id: str
    exchange_order_id: str
    symbol: str
    side: OrderSide
    status: VenueOrderStatus
    quantity: Decimal
    filled_quantity: Decimal
    price: Decimal | None
    fills: list[ExecutionReport] = field(default_factory=list)


ReportSink = Callable[[ExecutionReport], None]


def deliver(sink: ReportSink | None, report: ExecutionReport, venue: str) -> None:
    """Hand a report to the sink, if there is one; a sink that raises is logged and stops nothing."""
    if sink is None:
        return
    try:
        sink(report)
    except Exception:
        logger.exception("%s: the report sink failed on %s", venue, report.kind)


class Venue(Protocol):
    """An exchange as the engine sees it. Outcomes of actions arrive as ``ExecutionReport``s on the sink."""

    name: str
    reports_fills: bool
    """True when the venue reports its fills itself; only orders on venues that do not (manual or drop-copy
    accounts) take fills and statuses from outside."""

    def instruments(self) -> list[Instrument]: ...

    def set_report_sink(self, sink: ReportSink) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def submit(self, request: VenueOrderRequest) -> None: ...

    async def cancel(self, venue_client_order_id: str, symbol: str) -> None: ...

    async def amend(
        self, venue_client_order_id: str, symbol: str, quantity: Decimal | None, price: Decimal | None
    ) -> None: ...

    async def fetch_order(self, venue_client_order_id: str, symbol: str) -> VenueOrderState | None: ...

    async def fetch_open_orders(self, symbol: str | None = None) -> list[VenueOrderState]: ...

    async def fetch_market_vwap(self, symbol: str, start: datetime, end: datetime) -> Decimal | None:
        """The market's volume-weighted average price over ``[start, end]`` (``None`` if nothing traded)."""
        ...

    def last_price(self, symbol: str) -> Decimal | None: ...

    def mark_price(self, symbol: str) -> Decimal | None: ...


@runtime_checkable
class BatchSubmitter(Protocol):
    """A venue that takes several submissions in one call (``submit_many``): one round trip or one durable
    write for the lot. Each request's outcome is ``None`` or the error its own ``submit`` would have raised."""

    async def submit_many(self, requests: Sequence[VenueOrderRequest]) -> list[Exception | None]: ...


async def cancel_and_wait(tasks: list["asyncio.Task[Any]"]) -> None:
    """Cancel background tasks and wait until each has ended."""
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
