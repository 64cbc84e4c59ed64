"""HTTP routes of risk control: limits per scope and the trading state (kill switch)."""

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from cashup.api.deps import CurrentPrincipal, OrderQueriesDep, RuntimeDep, SessionDep, UnitOfWorkDep
from cashup.api.errors import BODY, READ, errors
from cashup.api.routes import StrictQueryRoute
from cashup.core.enums import Role
from cashup.core.principal import Principal
from cashup.core.risk import RiskLimits, Scope, TradingState
from cashup.execution.handlers import cancel_many
from cashup.orders.repository import OrderFilter
from cashup.risk.exposure import ExposureLine, denials, exposure
from cashup.risk.schemas import (
    DenialBucketOut,
    DenialsOut,
    ExposureLineOut,
    ExposureOut,
    LargePositionOut,
    RiskLimitsIn,
    RiskLimitsOut,
    RiskLimitsView,
    TradingStateIn,
    TradingStateOut,
    TradingStateView,
)
from cashup.risk.service import LIMIT_FIELDS, RiskRepository, limits_of

router = APIRouter(tags=["risk"], route_class=StrictQueryRoute)


async def get_risk(session: SessionDep, runtime: RuntimeDep) -> RiskRepository:
    return RiskRepository(session, runtime.rules.default_limits, runtime.clock)


Risk = Annotated[RiskRepository, Depends(get_risk)]


def _limits_out(scope: Scope, scope_id: str, limits: RiskLimits, **extra: object) -> RiskLimitsOut:
    return RiskLimitsOut(scope=scope, scope_id=scope_id or None,
                         **{name: getattr(limits, name) for name in LIMIT_FIELDS}, **extra)


@router.get("/risk/limits", responses=errors(*READ, 403, 404), response_model=RiskLimitsView)
async def get_limits(principal: CurrentPrincipal, risk: Risk, runtime: RuntimeDep) -> RiskLimitsView:
    """The configured defaults and every limit set per scope (risk, admin)."""
    principal.require(Role.RISK, Role.ADMIN)
    rows = await risk.limit_rows()
    return RiskLimitsView(
        defaults=_limits_out(Scope.GLOBAL, "", runtime.rules.default_limits),
        limits=[_limits_out(Scope(row.scope), row.scope_id, limits_of(row), updated_at=row.updated_at,
                            updated_by=row.updated_by) for row in rows],
    )


@router.put("/risk/limits", responses=errors(*READ, *BODY, 403, 404), response_model=RiskLimitsOut)
async def put_limits(body: RiskLimitsIn, principal: CurrentPrincipal, risk: Risk) -> RiskLimitsOut:
    """Set the limits of one scope: global, user, account or strategy (risk, admin)."""
    principal.require(Role.RISK, Role.ADMIN)
    limits = RiskLimits(**body.model_dump(include=set(LIMIT_FIELDS)))
    row = await risk.put_limits(body.scope, body.scope_id or "", limits, principal.user_id)
    await risk.session.commit()
    return _limits_out(Scope(row.scope), row.scope_id, limits_of(row), updated_at=row.updated_at,
                       updated_by=row.updated_by)


@router.get("/risk/trading-state", responses=errors(*READ, 403, 404), response_model=TradingStateView)
async def get_trading_state(principal: CurrentPrincipal, risk: Risk) -> TradingStateView:
    """The trading state in force for the caller, and (for risk and admin) every state set."""
    rows = await risk.state_rows()
    visible = [row for row in rows if principal.role.reads_everything or row.scope == Scope.GLOBAL
               or (row.scope == Scope.USER and row.scope_id == principal.user_id)]
    return TradingStateView(
        effective=await risk.trading_state_for(principal.user_id, None),
        states=[TradingStateOut(scope=Scope(row.scope), scope_id=row.scope_id or None, state=TradingState(row.state),
                                reason=row.reason, updated_at=row.updated_at, updated_by=row.updated_by)
                for row in visible],
    )


@router.put("/risk/trading-state", responses=errors(*READ, *BODY, 403, 404), response_model=TradingStateOut)
async def put_trading_state(
    body: TradingStateIn, principal: CurrentPrincipal, risk: Risk, uow: UnitOfWorkDep, orders: OrderQueriesDep
) -> TradingStateOut:
    """Set active / reducing / halted globally or for a user or account; halting cancels the open orders in scope."""
    principal.require(Role.RISK, Role.ADMIN)
    scope, scope_id = Scope.GLOBAL, ""
    if body.account_id is not None:
        scope, scope_id = Scope.ACCOUNT, str(body.account_id)
    elif body.user_id is not None:
        scope, scope_id = Scope.USER, body.user_id
    row = await risk.put_state(scope, scope_id, body.state, body.reason, principal.user_id)
    canceled = 0
    if body.state is TradingState.HALTED:
        criteria = OrderFilter(user_id=body.user_id, account_id=body.account_id)
        acting = Principal(principal.user_id, Role.ADMIN)
        open_ids = await orders.open_order_ids(acting, criteria)
        canceled = len(await cancel_many(uow, acting, open_ids, f"trading halted: {body.reason or 'kill switch'}"))
    await uow.commit()
    return TradingStateOut(scope=scope, scope_id=scope_id or None, state=body.state, reason=body.reason,
                           updated_at=row.updated_at, updated_by=row.updated_by, canceled_orders=canceled)


@router.get("/risk/exposure", responses=errors(*READ, 403), response_model=ExposureOut)
async def get_exposure(principal: CurrentPrincipal, session: SessionDep, runtime: RuntimeDep,
                       largest: Annotated[int, Query(ge=1, le=100)] = 10) -> ExposureOut:
    """Open positions valued at the mark: by symbol, strategy and user per quote currency, and the largest (risk,
    admin)."""
    principal.require(Role.RISK, Role.ADMIN)
    found = await exposure(session, runtime.last_price, largest)
    return ExposureOut(by_symbol=_lines(found.by_symbol), by_strategy=_lines(found.by_strategy),
                       by_user=_lines(found.by_user), unpriced=found.unpriced,
                       largest=[LargePositionOut.model_validate(item) for item in found.largest])


def _lines(group: list[ExposureLine]) -> list[ExposureLineOut]:
    return [ExposureLineOut(key=line.key, currency=line.currency, long=line.long, short=line.short, net=line.net,
                            gross=line.gross, positions=line.positions) for line in group]


@router.get("/risk/denials", responses=errors(*READ, 403), response_model=DenialsOut)
async def get_denials(principal: CurrentPrincipal, session: SessionDep, runtime: RuntimeDep,
                      hours: Annotated[int, Query(ge=1, le=24 * 31)] = 24,
                      bucket_minutes: Annotated[int, Query(ge=1, le=24 * 60)] = 60) -> DenialsOut:
    """Orders denied by the risk checks in the last ``hours``, counted by rule, in total and per bucket (risk,
    admin)."""
    principal.require(Role.RISK, Role.ADMIN)
    bucket = timedelta(minutes=bucket_minutes)
    now = runtime.clock()
    since = now - timedelta(hours=hours)
    found = await denials(session, since, bucket)
    return DenialsOut(since=found.since, bucket_seconds=int(bucket.total_seconds()), totals=dict(found.totals),
                      truncated=found.truncated,
                      buckets=[DenialBucketOut(start=start, counts=dict(counts))
                               for start, counts in sorted(found.buckets.items())])
