"""A venue whose fills the service cannot see: orders are worked by hand or elsewhere (drop copy).

The service records such an order's fills and statuses only from outside (``POST /orders/{id}/executions``,
``PUT /orders/{id}/status``), so ``reports_fills`` is false. Sending an order, a cancel or an amend is
acknowledged at once, as a desk would; prices and instruments come from a reference venue (the paper feed).
"""

from datetime import UTC, datetime
from decimal import Decimal

from cashup.core.instruments import Instrument
from cashup.venues.base import (
    ExecutionReport,
    ReportKind,
    ReportSink,
    Venue,
    VenueOrderRequest,
    VenueOrderState,
    VenueOrderStatus,
)


class ManualVenue:
    """Acknowledges what it is sent and keeps what it acknowledged; fills are reported from outside."""

    reports_fills = False

    def __init__(self, name: str, reference: Venue) -> None:
        self.name = name
        self._reference = reference
        self._sink: ReportSink | None = None
        self._orders: dict[str, VenueOrderState] = {}

    def instruments(self) -> list[Instrument]:
        return self._reference.instruments()

    def set_report_sink(self, sink: ReportSink) -> None:
        self._sink = sink

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def submit(self, request: VenueOrderRequest) -> None:
        exchange_order_id = f"{self.name}-{request.venue_client_order_id}"
        self._orders[request.venue_client_order_id] = VenueOrderState(
            venue_client_order_id=request.venue_client_order_id,
            exchange_order_id=exchange_order_id,
            symbol=request.symbol,
            side=request.side,
            status=VenueOrderStatus.OPEN,
            quantity=request.quantity,
            filled_quantity=Decimal(0),
            price=request.price,
        )
        self._emit(ReportKind.ACCEPTED, request.venue_client_order_id, exchange_order_id=exchange_order_id)

    async def cancel(self, venue_client_order_id: str, symbol: str) -> None:
        self._orders.pop(venue_client_order_id, None)
        self._emit(ReportKind.CANCELED, venue_client_order_id, reason="canceled")

    async def amend(
        self, venue_client_order_id: str, symbol: str, quantity: Decimal | None, price: Decimal | None
    ) -> None:
        self._emit(ReportKind.REPLACED, venue_client_order_id, quantity=quantity, price=price)

    async def fetch_order(self, venue_client_order_id: str, symbol: str) -> VenueOrderState | None:
        return self._orders.get(venue_client_order_id)

    async def fetch_open_orders(self, symbol: str | None = None) -> list[VenueOrderState]:
        return [state for state in self._orders.values() if symbol is None or state.symbol == symbol]

    def last_price(self, symbol: str) -> Decimal | None:
        return self._reference.last_price(symbol)

    def mark_price(self, symbol: str) -> Decimal | None:
        return self._reference.mark_price(symbol)

    def _emit(self, kind: ReportKind, client_id: str, **fields: object) -> None:
        if self._sink is not None:
            self._sink(ExecutionReport(kind=kind, venue_client_order_id=client_id, at=datetime.now(UTC), **fields))
