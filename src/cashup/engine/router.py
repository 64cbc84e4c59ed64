"""HTTP routes of the engine: the failure table and the queue status."""

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Body, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from cashup.api.deps import CurrentPrincipal, RuntimeDep, SessionDep, UnitOfWorkDep
from cashup.api.errors import BODY, READ, errors
from cashup.api.routes import StrictQueryRoute
from cashup.api.types import Amount, QueryDay
from cashup.core.enums import Role
from cashup.core.errors import Conflict
from cashup.engine.failures import FailureStore
from cashup.engine.progress import iceberg_progress, twap_progress
from cashup.engine.queue import queue_status
from cashup.execution.handlers import set_paused
from cashup.orders.service import decode_cursor, encode_cursor

router = APIRouter(tags=["engine"], route_class=StrictQueryRoute)
FailureStatusName = Literal["pending", "processing", "success", "failed", "discarded"]
FailureSource = Literal["intake", "engine"]


class FailureOut(BaseModel):
    id: UUID
    kind: str
    order_id: UUID | None
    payload: dict[str, Any]
    error: str
    retry_count: int
    status: FailureStatusName
    created_at: datetime
    updated_at: datetime
    next_retry_at: datetime | None


class FailureRetry(BaseModel):
    """A retry of a failed order request, optionally with a corrected message (and the sender's token)."""

    model_config = ConfigDict(extra="forbid")

    message: dict[str, Any] | None = Field(default=None, description="the corrected order request (intake only)")
    authorization: str | None = Field(
        default=None, max_length=4096,
        description="`Bearer <token>` of the sender, for a message whose own token was missing or invalid")


class FailurePage(BaseModel):
    items: list[FailureOut]
    next_cursor: str | None = None


class WorkerOut(BaseModel):
    id: str
    concurrency: int
    started_at: datetime
    heartbeat_at: datetime


class QueueStatus(BaseModel):
    due: int
    scheduled: int
    in_progress: int
    retrying: int
    failed: int
    failures: dict[str, int]
    by_action: dict[str, int]
    oldest_due_age_seconds: float | None
    workers_alive: int
    workers: list[WorkerOut]


@router.get("/failures", responses=errors(*READ, 403), response_model=FailurePage)
async def list_failures(
    principal: CurrentPrincipal,
    session: SessionDep,
    runtime: RuntimeDep,
    status: FailureStatusName | None = None,
    source: FailureSource | None = None,
    date: QueryDay | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> FailurePage:
    """Failed order requests (`source=intake`) and work that failed (`engine`), newest first (admin, risk)."""
    principal.require(Role.ADMIN, Role.RISK)
    rows = await FailureStore(session, runtime.clock).find(status, limit + 1, decode_cursor(cursor) if cursor else None,
                                                           source=source, day=date)
    next_cursor = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
    return FailurePage(items=[FailureOut.model_validate(row, from_attributes=True) for row in rows[:limit]],
                       next_cursor=next_cursor)


@router.get("/failures/{failure_id:uuid}", responses=errors(*READ, 403, 404), response_model=FailureOut)
async def get_failure(failure_id: UUID, principal: CurrentPrincipal, session: SessionDep,
                      runtime: RuntimeDep) -> FailureOut:
    """One failure with its error and retry count (admin, risk)."""
    principal.require(Role.ADMIN, Role.RISK)
    return FailureOut.model_validate(await FailureStore(session, runtime.clock).get(failure_id), from_attributes=True)


@router.post("/failures/{failure_id:uuid}/retry", responses=errors(*READ, *BODY, 403, 404, 409),
             response_model=FailureOut)
async def retry_failure(failure_id: UUID, principal: CurrentPrincipal, session: SessionDep, runtime: RuntimeDep,
                        request: Request, body: Annotated[FailureRetry | None, Body()] = None) -> FailureOut:
    """Retry now (admin): an order request is placed again through the dedupe; failed work goes back in the queue."""
    principal.require(Role.ADMIN)
    body = body or FailureRetry()
    store = FailureStore(session, runtime.clock)
    row = await store.get(failure_id)
    if row.kind.startswith("intake."):
        await session.rollback()
        row = await request.app.state.intake_failures.retry(failure_id, body.message, body.authorization)
        return FailureOut.model_validate(row, from_attributes=True)
    if body.message is not None or body.authorization is not None:
        raise Conflict(f"failure {failure_id} is failed work, not a message: it is retried as it is")
    row = await store.retry(failure_id)
    await session.commit()
    runtime.signals.wake_worker()
    return FailureOut.model_validate(row, from_attributes=True)


@router.post("/failures/{failure_id:uuid}/discard", responses=errors(*READ, 403, 404, 409), response_model=FailureOut)
async def discard_failure(failure_id: UUID, principal: CurrentPrincipal, session: SessionDep,
                          runtime: RuntimeDep) -> FailureOut:
    """Set a failure aside for good (admin): it is kept, never retried on a schedule; 409 if it succeeded."""
    principal.require(Role.ADMIN)
    row = await FailureStore(session, runtime.clock).discard(failure_id)
    await session.commit()
    return FailureOut.model_validate(row, from_attributes=True)


@router.get("/orders/queue/status", responses=errors(*READ, 403), response_model=QueueStatus)
async def get_queue_status(principal: CurrentPrincipal, session: SessionDep, runtime: RuntimeDep) -> QueueStatus:
    """Work due, scheduled, in progress, retrying and failed; the oldest due age; the workers alive."""
    principal.require(Role.ADMIN, Role.RISK)
    dead_after = timedelta(seconds=runtime.settings.worker_dead_after_seconds)
    return QueueStatus.model_validate(await queue_status(session, runtime.clock, dead_after))


class TwapProgressOut(BaseModel):
    order_id: UUID
    status: str
    slices_done: int
    slices_total: int
    filled_quantity: Amount
    remaining_quantity: Amount
    average_price: Amount | None
    market_vwap: Amount | None
    slippage_bps: Amount | None
    window_start: datetime
    window_end: datetime
    paused: bool


class IcebergProgressOut(BaseModel):
    order_id: UUID
    status: str
    display_quantity: Amount
    visible: Amount
    hidden: Amount
    filled_quantity: Amount
    average_price: Amount | None
    paused: bool


@router.get("/orders/{order_id:uuid}/twap-progress", responses=errors(*READ, 404), response_model=TwapProgressOut)
async def get_twap_progress(order_id: UUID, principal: CurrentPrincipal, session: SessionDep,
                            runtime: RuntimeDep) -> TwapProgressOut:
    """Slices done of total, filled, average price, the market VWAP over the elapsed window and slippage in bps."""
    return TwapProgressOut.model_validate(await twap_progress(
        session, principal, order_id, instruments=runtime.instruments, venues=runtime.venues, clock=runtime.clock))


@router.get("/orders/{order_id:uuid}/iceberg-progress", responses=errors(*READ, 404), response_model=IcebergProgressOut)
async def get_iceberg_progress(order_id: UUID, principal: CurrentPrincipal, session: SessionDep,
                               runtime: RuntimeDep) -> IcebergProgressOut:
    """Visible (working at the venue), hidden (not shown yet) and filled quantities."""
    return IcebergProgressOut.model_validate(await iceberg_progress(
        session, principal, order_id, instruments=runtime.instruments, venues=runtime.venues, clock=runtime.clock))


@router.post("/orders/{order_id:uuid}/pause", responses=errors(*READ, 403, 404, 409), status_code=204)
async def pause(order_id: UUID, principal: CurrentPrincipal, uow: UnitOfWorkDep) -> None:
    """Stop scheduling new child orders of a running algorithm; working children stay as they are."""
    await set_paused(uow, principal, order_id, True)
    await uow.commit()


@router.post("/orders/{order_id:uuid}/resume", responses=errors(*READ, 403, 404, 409), status_code=204)
async def resume(order_id: UUID, principal: CurrentPrincipal, uow: UnitOfWorkDep) -> None:
    """Resume scheduling a paused algorithm."""
    await set_paused(uow, principal, order_id, False)
    await uow.commit()
