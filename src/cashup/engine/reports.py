"""Apply venue execution reports to orders, many per transaction, in the order they arrived."""

import asyncio
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from uuid import UUID

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cashup.core.enums import WORKING_STATUSES, Liquidity
from cashup.core.errors import InvalidTransition
from cashup.core.orders import (
    EventKind,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    OrderReplaceRejected,
)
from cashup.core.settlement import balances_touched
from cashup.engine.crash import AFTER_ACCEPT, crash_point
from cashup.engine.failures import FailureStore
from cashup.execution.signals import Signals
from cashup.execution.uow import UnitOfWork
from cashup.execution.work import scheduled
from cashup.metrics import ACK_TO_FILL, IGNORED_REPORTS, ORDER_TO_ACK
from cashup.trading.positions import PositionKey, position_key
from cashup.venues.base import ExecutionReport, ReportKind

log = structlog.get_logger("cashup.engine.reports")
BATCH_LIMIT = 200


def report_to_event(report: ExecutionReport) -> OrderEvent:
    at = report.at
    match report.kind:
        case ReportKind.ACCEPTED:
            return OrderAccepted(at=at, exchange_order_id=report.exchange_order_id)
        case ReportKind.REJECTED:
            return OrderRejected(at=at, reason=report.reason or "rejected by venue")
        case ReportKind.FILL:
            assert report.execution_id and report.quantity is not None and report.price is not None
            return OrderFilled(
                at=at,
                execution_id=report.execution_id,
                quantity=report.quantity,
                price=report.price,
                fee=report.fee or Decimal(0),
                fee_currency=report.fee_currency,
                liquidity=report.liquidity or Liquidity.TAKER,
            )
        case ReportKind.CANCELED:
            return OrderCanceled(at=at, reason=report.reason)
        case ReportKind.CANCEL_REJECTED:
            return OrderCancelRejected(at=at, reason=report.reason or "cancel rejected by venue")
        case ReportKind.REPLACED:
            return OrderReplaced(
                at=at, quantity=report.quantity, price=report.price, exchange_order_id=report.exchange_order_id
            )
        case ReportKind.REPLACE_REJECTED:
            return OrderReplaceRejected(at=at, reason=report.reason or "amend rejected by venue")
        case ReportKind.EXPIRED:
            return OrderExpired(at=at, reason=report.reason)
    raise ValueError(f"unknown report kind {report.kind}")


class ReportApplier:
    """Consumes ``(venue name, report)`` pairs from a queue and applies them, many per unit of work."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        signals: Signals,
        clock: Callable[[], datetime],
    ) -> None:
        self.sessions = sessions
        self.signals = signals
        self.clock = clock
        self.queue: asyncio.Queue[tuple[str, ExecutionReport]] = asyncio.Queue()

    def sink_for(self, venue_name: str) -> Callable[[ExecutionReport], None]:
        return lambda report: self.queue.put_nowait((venue_name, report))

    async def run(self) -> None:
        while True:
            batch = [await self.queue.get()]
            while len(batch) < BATCH_LIMIT and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            try:
                await self.apply_batch(batch)
            except Exception:
                log.exception("report batch failed; applying one by one", size=len(batch))
                for item in batch:
                    try:
                        await self.apply_batch([item])
                    except Exception:
                        log.exception("report could not be applied", venue=item[0], report=repr(item[1]))
            finally:
                for _ in batch:
                    self.queue.task_done()

    async def drain(self) -> None:
        """Wait until every queued report has been applied (tests, shutdown)."""
        await self.queue.join()

    async def apply_batch(self, batch: list[tuple[str, ExecutionReport]]) -> list[UUID | None]:
        """Apply reports in one unit of work and commit; for each, the order it changed (``None``: not applied)."""
        async with self.sessions() as session:
            uow = UnitOfWork(session, self.clock, self.signals)
            await uow.orders.prefetch_venue_client_ids(
                {(venue_name, report.venue_client_order_id) for venue_name, report in batch}, for_update=True)
            await self._lock_books(uow, batch)
            settled: list[UUID] = []
            changed = [await apply_report(uow, venue_name, report, settled=settled) for venue_name, report in batch]
            await FailureStore(session, self.clock).resolve_many(settled)
            await uow.commit()
        return changed

    @staticmethod
    async def _lock_books(uow: UnitOfWork, batch: list[tuple[str, ExecutionReport]]) -> None:
        """Lock every balance row, then every position row, the batch may change, each kind in one sorted
        statement (balances first, as every writer takes them), and look up its fills booked already."""
        balances: set[tuple] = set()
        positions: set[PositionKey] = set()
        fills: set[tuple[UUID, str]] = set()
        for venue_name, report in batch:
            order = await uow.orders.get_by_venue_client_id(venue_name, report.venue_client_order_id)
            if order is None:
                continue
            is_fill = report.kind is ReportKind.FILL
            balances |= balances_touched(order, report.fee_currency, fill=is_fill)
            if is_fill and report.execution_id is not None:
                positions.add(position_key(order.account_id, order.strategy_id, order.exchange, order.symbol))
                fills.add((order.id, report.execution_id))
        await uow.settlements.ledger.balances(balances)
        await uow.settlements.positions.lock_many(positions)
        await uow.orders.prefetch_executions(fills)


async def apply_report(uow: UnitOfWork, venue_name: str, report: ExecutionReport, *,
                       settled: list[UUID] | None = None) -> UUID | None:
    """Apply one report in ``uow``; return the order id it changed, or ``None`` if it did not apply.

    An order the report leaves working or final has no work left, and its retried failures have succeeded:
    they are resolved here, or, when the caller passes ``settled``, by the caller for many orders at once."""
    order = await uow.orders.get_by_venue_client_id(venue_name, report.venue_client_order_id, for_update=True)
    if order is None:
        IGNORED_REPORTS.labels("unknown_order").inc()
        log.warning("report for an unknown order", venue=venue_name, client_order_id=report.venue_client_order_id)
        return None
    event = report_to_event(report)
    if isinstance(event, OrderFilled) and (event.execution_id in order.execution_ids
                                           or await uow.orders.has_execution(order.id, event.execution_id)):
        IGNORED_REPORTS.labels("duplicate_fill").inc()
        return None
    first_fill = order.filled_quantity == 0
    try:
        kinds = await uow.record(order, [event])
    except InvalidTransition as error:
        IGNORED_REPORTS.labels(report.kind.value).inc()
        log.warning("report does not apply", order_id=str(order.id), status=order.status.value,
                    report=report.kind.value, detail=error.detail)
        return None
    if EventKind.ACCEPTED in kinds:
        crash_point(AFTER_ACCEPT, order.client_order_id)
        ORDER_TO_ACK.observe(max((report.at - order.created_at).total_seconds(), 0))
    if isinstance(event, OrderFilled) and first_fill:
        ACK_TO_FILL.observe(max((report.at - order.created_at).total_seconds(), 0))
    if order.status.is_final or order.status in WORKING_STATUSES:
        uow.schedule(order.id, scheduled(None, uow.clock()))
        if settled is None:
            await FailureStore(uow.session, uow.clock).resolve(order.id)
        else:
            settled.append(order.id)
    return order.id
