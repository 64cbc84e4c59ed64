"""HTTP routes of the orders slice. Thin: resolve auth and input, call a handler or a query, commit, answer."""

import asyncio
from datetime import UTC, datetime, time, timedelta
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Header, Path, Query, Request, Response

from cashup.api.deps import CurrentPrincipal, OrderQueriesDep, RuntimeDep, UnitOfWorkDep, placements_of
from cashup.api.errors import BODY, READ, domain_error_response, errors
from cashup.api.routes import StrictQueryRoute
from cashup.api.types import QueryDay, QueryTime
from cashup.core.enums import OrderSide, OrderStatus, Role
from cashup.core.errors import NotFound
from cashup.core.instruments import normalize_symbol
from cashup.core.orders import Order
from cashup.core.orders.commands import CancelOrder
from cashup.core.principal import Principal
from cashup.core.risk import RiskDenied
from cashup.db.models import OrderRow
from cashup.engine.failures import FailureStore
from cashup.execution.handlers import (
    ExternalFill,
    amend_order,
    apply_status,
    book_external_fill,
    cancel_many,
    cancel_order,
)
from cashup.execution.idempotency import StoredAnswer
from cashup.execution.placement import Placed
from cashup.execution.uow import UnitOfWork
from cashup.orders.repository import OrderFilter
from cashup.orders.schemas import (
    CancelAllResult,
    DailyOrderStatistics,
    EventOut,
    ExecutionCreate,
    ExecutionOut,
    OrderAmend,
    OrderCreate,
    OrderOut,
    OrderPage,
    OrderStatistics,
    OrderValidation,
    SimpleOrderOut,
    SimpleOrderPage,
    StatusUpdate,
    StatusUpdateById,
)
from cashup.orders.service import OrderQueries

router = APIRouter(tags=["orders"], route_class=StrictQueryRoute)

SETTLING = (OrderStatus.PENDING_CANCEL, OrderStatus.PENDING_REPLACE)
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=255)]
Reason = Annotated[str | None, Query(max_length=255, description="Why the order is canceled")]


def order_out(order: OrderRow | Order) -> OrderOut:
    return OrderOut.model_validate(order, from_attributes=True)


def json_response(model: OrderOut | ExecutionOut, status_code: int) -> Response:
    return Response(model.model_dump_json(), status_code=status_code, media_type="application/json")


def render_placement(placed: Placed) -> StoredAnswer:
    """The answer to a placement, as sent and as stored under an ``Idempotency-Key``: a denial is final too."""
    if placed.denial is not None:
        denied = domain_error_response(RiskDenied(placed.denial, placed.order.id))
        return StoredAnswer(denied.status_code, bytes(denied.body))
    return StoredAnswer(201 if placed.created else 200, order_out(placed.order).model_dump_json().encode())


@router.post("/orders", status_code=201, response_model=OrderOut,
             responses={200: {"model": OrderOut}} | errors(*READ, *BODY, 403, 404, 409))
async def create_order(
    body: OrderCreate,
    principal: CurrentPrincipal,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Place an order. 201 when created; 200 with the original for a repeated `client_order_id`."""
    answer = await placements_of(request).place(body.to_command(principal), idempotency_key)
    headers = {"Idempotent-Replayed": "true"} if answer.replayed else None
    return Response(answer.body, status_code=answer.status_code, media_type="application/json", headers=headers)


@router.post("/orders/validate", responses=errors(*READ, *BODY, 403, 404), response_model=OrderValidation)
async def validate_order(body: OrderCreate, principal: CurrentPrincipal, uow: UnitOfWorkDep,
                         runtime: RuntimeDep) -> OrderValidation:
    """Dry run: the risk verdict, the funds the order would lock and the position it would leave; sends nothing."""
    assessment = await runtime.placement.assess(uow, body.to_command(principal))
    await uow.session.rollback()
    denial = assessment.denial
    return OrderValidation(
        verdict="denied" if denial else "accepted",
        rule=denial.rule if denial else None,
        detail=denial.detail if denial else None,
        limit=denial.limit if denial else None,
        requested=denial.requested if denial else None,
        lock_asset=assessment.lock_asset,
        lock_amount=assessment.lock_amount,
        available=assessment.context.available_balance,
        mark_price=assessment.mark,
        position_quantity=assessment.context.position_quantity,
        projected_position=assessment.projected_position,
    )


@router.get("/orders", responses=errors(*READ), response_model=OrderPage)
async def list_orders(
    principal: CurrentPrincipal,
    orders: OrderQueriesDep,
    status: Annotated[list[OrderStatus] | None, Query()] = None,
    symbol: Annotated[str | None, Query(max_length=32)] = None,
    side: OrderSide | None = None,
    strategy_id: Annotated[str | None, Query(max_length=64)] = None,
    exchange: Annotated[str | None, Query(max_length=32)] = None,
    parent_order_id: UUID | None = None,
    created_from: QueryTime | None = None,
    created_to: QueryTime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    page: Annotated[int | None, Query(ge=1, le=100_000)] = None,
    page_size: Annotated[int, Query(ge=1, le=500)] = 50,
) -> OrderPage:
    """List the caller's orders, newest first: keyset (`limit`, `cursor`) or page (`page`, `page_size`)."""
    criteria = OrderFilter(
        status=status,
        symbol=normalize_symbol(symbol) if symbol else None,
        side=side,
        strategy_id=strategy_id,
        exchange=exchange,
        parent_order_id=parent_order_id,
        created_from=created_from,
        created_to=created_to,
    )
    if page is not None:
        rows, total = await orders.list_page(principal, criteria, page, page_size)
        return OrderPage(items=[order_out(row) for row in rows], page=page, page_size=page_size, total=total)
    rows, next_cursor = await orders.list_keyset(principal, criteria, limit, cursor)
    return OrderPage(items=[order_out(row) for row in rows], next_cursor=next_cursor)


@router.delete("/orders", responses=errors(*READ, 403), response_model=CancelAllResult)
async def cancel_all_orders(
    principal: CurrentPrincipal,
    orders: OrderQueriesDep,
    uow: UnitOfWorkDep,
    symbol: Annotated[str | None, Query(max_length=32)] = None,
    side: OrderSide | None = None,
    strategy_id: Annotated[str | None, Query(max_length=64)] = None,
    exchange: Annotated[str | None, Query(max_length=32)] = None,
    reason: Reason = None,
) -> CancelAllResult:
    """Cancel every open order of the caller that matches the filter."""
    criteria = OrderFilter(
        symbol=normalize_symbol(symbol) if symbol else None, side=side, strategy_id=strategy_id, exchange=exchange
    )
    principal.require_trading()
    order_ids = await cancel_many(uow, principal, await orders.open_order_ids(principal, criteria),
                                  reason or "cancel all")
    await uow.commit()
    return CancelAllResult(canceled=len(order_ids), order_ids=order_ids)


@router.get("/orders/statistics/summary", responses=errors(*READ), response_model=OrderStatistics)
async def statistics_summary(principal: CurrentPrincipal, orders: OrderQueriesDep) -> OrderStatistics:
    """Counts by status and type, fill ratio, volume, notional, fees and fill latency of the caller's orders."""
    return OrderStatistics.model_validate(await orders.statistics(principal, OrderFilter()))


@router.get("/orders/statistics", responses=errors(*READ), response_model=OrderStatistics)
async def statistics(
    principal: CurrentPrincipal,
    orders: OrderQueriesDep,
    strategy_id: Annotated[str | None, Query(max_length=64)] = None,
    symbol: Annotated[str | None, Query(max_length=32)] = None,
    exchange: Annotated[str | None, Query(max_length=32)] = None,
    created_from: QueryTime | None = None,
    created_to: QueryTime | None = None,
) -> OrderStatistics:
    """Statistics filtered by strategy, symbol, exchange and time range."""
    criteria = OrderFilter(
        strategy_id=strategy_id,
        symbol=normalize_symbol(symbol) if symbol else None,
        exchange=exchange,
        created_from=created_from,
        created_to=created_to,
    )
    return OrderStatistics.model_validate(await orders.statistics(principal, criteria))


@router.get("/stats/orders", responses=errors(*READ), response_model=DailyOrderStatistics)
async def statistics_by_date(
    principal: CurrentPrincipal, orders: OrderQueriesDep, runtime: RuntimeDep, date: QueryDay | None = None
) -> DailyOrderStatistics:
    """Statistics of the orders created on one UTC day (default: today), by source, with the day's failures."""
    day = date or datetime.now(UTC).date()
    start = datetime.combine(day, time.min, tzinfo=UTC)
    criteria = OrderFilter(created_from=start, created_to=start + timedelta(days=1))
    summary = await orders.statistics(principal, criteria)
    from_intake = await orders.intake_orders(principal, start, start + timedelta(days=1))
    failures = None
    if principal.role in (Role.ADMIN, Role.RISK):
        failures = await FailureStore(orders.session, runtime.clock).counts_of_day(day)
    by_source = {"rest": summary["total_orders"] - from_intake, "intake": from_intake}
    return DailyOrderStatistics.model_validate(summary | {"date": day, "by_source": by_source,
                                                          "failures": failures})


@router.post("/orders/status/update", responses=errors(*READ, *BODY, 403, 404, 409), response_model=OrderOut)
async def update_status(body: StatusUpdateById, principal: CurrentPrincipal, uow: UnitOfWorkDep,
                        runtime: RuntimeDep) -> OrderOut:
    """Apply an external status report (admin or strategy service, manual exchanges only); 409 if not allowed."""
    order = await apply_status(uow, principal, body.order_id, body.status, body.reason, body.exchange_order_id,
                               runtime.venue_reports_fills)
    await uow.commit()
    return order_out(order)


@router.get("/orders/by-client-id/{client_order_id}", responses=errors(*READ, 404), response_model=OrderOut)
async def get_order_by_client_id(
    client_order_id: Annotated[str, Path(min_length=1, max_length=64)],
    principal: CurrentPrincipal,
    orders: OrderQueriesDep,
) -> OrderOut:
    """Find one of the caller's orders by its `client_order_id`."""
    return order_out(await orders.get_by_client_id(principal, client_order_id))


@router.get("/orders/{order_id:uuid}", responses=errors(*READ, 404), response_model=OrderOut)
async def get_order(order_id: UUID, principal: CurrentPrincipal, orders: OrderQueriesDep,
                    runtime: RuntimeDep) -> Response:
    """One order with its fill state."""
    cache = runtime.read_cache
    if cache is None:
        return json_response(order_out(await orders.get(principal, order_id)), 200)
    cached = await cache.get(order_id)
    if cached is not None:
        owner, body = cached
        if not principal.can_see(owner):
            raise NotFound(f"order {order_id} not found")
        return Response(body, media_type="application/json")
    epoch = cache.epoch()
    row = await orders.get(principal, order_id)
    body = order_out(row).model_dump_json().encode()
    await cache.put(order_id, row.user_id, body, epoch)
    return Response(body, media_type="application/json")


async def _until_settled(runtime: RuntimeDep, orders: OrderQueries, principal: Principal, order: Order,
                         changed: asyncio.Event) -> OrderOut:
    """Give the engine a moment to finish a cancel or amend, so the answer shows the outcome."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + runtime.settings.order_action_wait_seconds
    current = order_out(order)
    while current.status in SETTLING and (remaining := deadline - loop.time()) > 0:
        try:
            async with asyncio.timeout(remaining):
                await changed.wait()
        except TimeoutError:
            break
        changed.clear()
        current = order_out(await orders.fresh(principal, order.id))
    return current


async def _amend(order_id: UUID, body: OrderAmend, principal: Principal, uow: UnitOfWork, orders: OrderQueries,
                 runtime: RuntimeDep) -> OrderOut:
    with runtime.signals.watching(order_id) as changed:
        order = await amend_order(uow, body.to_command(principal, order_id), runtime.instruments)
        await uow.commit()
        return await _until_settled(runtime, orders, principal, order, changed)


@router.put("/orders/{order_id:uuid}", responses=errors(*READ, *BODY, 403, 404, 409), response_model=OrderOut)
async def replace_order(order_id: UUID, body: OrderAmend, principal: CurrentPrincipal, uow: UnitOfWorkDep,
                        orders: OrderQueriesDep, runtime: RuntimeDep) -> OrderOut:
    """Amend price, quantity (the new total, including what has filled) or trigger of a working order."""
    return await _amend(order_id, body, principal, uow, orders, runtime)


@router.patch("/orders/{order_id:uuid}", responses=errors(*READ, *BODY, 403, 404, 409), response_model=OrderOut)
async def amend(order_id: UUID, body: OrderAmend, principal: CurrentPrincipal, uow: UnitOfWorkDep,
                orders: OrderQueriesDep, runtime: RuntimeDep) -> OrderOut:
    """Amend price, quantity (the new total, including what has filled) or trigger of a working order."""
    return await _amend(order_id, body, principal, uow, orders, runtime)


async def _cancel(order_id: UUID, reason: str | None, principal: Principal, uow: UnitOfWork, orders: OrderQueries,
                  runtime: RuntimeDep) -> OrderOut:
    with runtime.signals.watching(order_id) as changed:
        order = await cancel_order(uow, CancelOrder(principal=principal, order_id=order_id, reason=reason))
        await uow.commit()
        return await _until_settled(runtime, orders, principal, order, changed)


@router.delete("/orders/{order_id:uuid}", responses=errors(*READ, 403, 404, 409), response_model=OrderOut)
async def delete_order(order_id: UUID, principal: CurrentPrincipal, uow: UnitOfWorkDep, orders: OrderQueriesDep,
                       runtime: RuntimeDep, reason: Reason = None) -> OrderOut:
    """Cancel an order; 409 if it is already final."""
    return await _cancel(order_id, reason, principal, uow, orders, runtime)


@router.post("/orders/{order_id:uuid}/cancel", responses=errors(*READ, 403, 404, 409), response_model=OrderOut)
async def cancel(order_id: UUID, principal: CurrentPrincipal, uow: UnitOfWorkDep, orders: OrderQueriesDep,
                 runtime: RuntimeDep, reason: Reason = None) -> OrderOut:
    """Cancel an order; 409 if it is already final."""
    return await _cancel(order_id, reason, principal, uow, orders, runtime)


@router.put("/orders/{order_id:uuid}/cancel", responses=errors(*READ, 403, 404, 409), response_model=OrderOut)
async def cancel_put(order_id: UUID, principal: CurrentPrincipal, uow: UnitOfWorkDep, orders: OrderQueriesDep,
                     runtime: RuntimeDep, reason: Reason = None) -> OrderOut:
    """Cancel an order; 409 if it is already final."""
    return await _cancel(order_id, reason, principal, uow, orders, runtime)


@router.get("/orders/{order_id:uuid}/executions", responses=errors(*READ, 404), response_model=list[ExecutionOut])
async def list_executions(order_id: UUID, principal: CurrentPrincipal, orders: OrderQueriesDep) -> list[ExecutionOut]:
    """The fills of an order, oldest first."""
    rows = await orders.executions(principal, order_id)
    return [ExecutionOut.model_validate(row, from_attributes=True) for row in rows]


@router.post(
    "/orders/{order_id:uuid}/executions",
    status_code=201,
    response_model=ExecutionOut,
    responses={200: {"model": ExecutionOut}} | errors(*READ, *BODY, 403, 404, 409),
)
async def add_execution(
    order_id: UUID, body: ExecutionCreate, principal: CurrentPrincipal, uow: UnitOfWorkDep, orders: OrderQueriesDep,
    runtime: RuntimeDep,
) -> Response:
    """Record a fill reported from outside (admin or strategy service, manual exchanges only); repeat: 200."""
    fill = body.to_event(runtime.clock())
    _, created = await book_external_fill(uow, ExternalFill(principal=principal, order_id=order_id, fill=fill),
                                           runtime.venue_reports_fills)
    await uow.commit()
    execution = await orders.execution(order_id, body.execution_id)
    assert execution is not None
    return json_response(ExecutionOut.model_validate(execution, from_attributes=True), 201 if created else 200)


@router.get("/orders/{order_id:uuid}/events", responses=errors(*READ, 404), response_model=list[EventOut])
async def list_events(order_id: UUID, principal: CurrentPrincipal, orders: OrderQueriesDep) -> list[EventOut]:
    """The audit trail of an order: every transition with its sequence number."""
    return [EventOut.model_validate(row, from_attributes=True) for row in await orders.events(principal, order_id)]


@router.put("/orders/{order_id:uuid}/status", responses=errors(*READ, *BODY, 403, 404, 409), response_model=OrderOut)
async def put_status(order_id: UUID, body: StatusUpdate, principal: CurrentPrincipal, uow: UnitOfWorkDep,
                     runtime: RuntimeDep) -> OrderOut:
    """Apply an external status report (admin or strategy service, manual exchanges only); 409 if not allowed."""
    order = await apply_status(uow, principal, order_id, body.status, body.reason, body.exchange_order_id,
                               runtime.venue_reports_fills)
    await uow.commit()
    return order_out(order)


@router.get("/users/{user_id}/orders", responses=errors(*READ, 404), response_model=SimpleOrderPage,
            response_model_by_alias=True)
async def list_user_orders(
    user_id: Annotated[str, Path(min_length=1, max_length=64)],
    principal: CurrentPrincipal,
    orders: OrderQueriesDep,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(alias="pageSize", ge=1, le=500)] = 10,
) -> SimpleOrderPage:
    """A user's orders, newest first, with the simple statuses pending / completed / cancelled / failed."""
    rows, total = await orders.list_page(principal, OrderFilter(user_id=user_id), page, page_size)
    items = [
        SimpleOrderOut(
            order_id=row.id,
            user_id=row.user_id,
            symbol=row.symbol,
            side=OrderSide(row.side),
            quantity=row.quantity,
            unit_price=row.average_price or row.price,
            total_amount=row.filled_quantity * (row.average_price or 0),
            status=OrderStatus(row.status).simple,
            detailed_status=OrderStatus(row.status),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )
        for row in rows
    ]
    return SimpleOrderPage(items=items, page=page, page_size=page_size, total=total)
