"""HTTP routes of the books: balances, ledger, trades, positions."""

import dataclasses
from typing import TYPE_CHECKING, Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import TypeAdapter
from sqlalchemy import select

from cashup.api.deps import CurrentPrincipal, Placements, RuntimeDep, SessionDep
from cashup.api.errors import BODY, READ, errors
from cashup.api.routes import StrictQueryRoute
from cashup.api.types import QueryTime
from cashup.core.enums import OrderSide, OrderType
from cashup.core.errors import Conflict, NotFound
from cashup.core.instruments import normalize_symbol
from cashup.core.ledger import LedgerReason
from cashup.core.orders.commands import PlaceOrder
from cashup.core.principal import Principal
from cashup.db.models import AccountRow, BalanceRow
from cashup.orders.schemas import OrderOut
from cashup.orders.service import decode_cursor, encode_cursor
from cashup.trading.balances import BalanceService
from cashup.trading.ledger_store import Balance
from cashup.trading.positions import PositionService
from cashup.trading.schemas import (
    BalanceChange,
    BalanceOut,
    LedgerEntryOut,
    LedgerPage,
    PositionClose,
    PositionOut,
    PositionSet,
    SyncReport,
    TradeIn,
    TradeOut,
    TradePage,
    TradeSummary,
    TransferIn,
    TransferOut,
    VenuePositionOut,
)
from cashup.trading.sync import PositionSync, venue_filled
from cashup.trading.trades import TradeService
from cashup.venues.errors import VenueError

if TYPE_CHECKING:
    from cashup.replicas.read_cache import ReadCache  # the Redis client library loads only where it is configured

router = APIRouter(route_class=StrictQueryRoute)
Symbol = Annotated[str, Path(min_length=3, max_length=32)]


async def balance_service(runtime: RuntimeDep, session: SessionDep) -> BalanceService:
    return BalanceService(session, runtime.accounts, runtime.clock)


async def trade_service(runtime: RuntimeDep, session: SessionDep) -> TradeService:
    return TradeService(session, runtime.accounts, runtime.instruments, runtime.clock)


async def position_service(runtime: RuntimeDep, session: SessionDep) -> PositionService:
    return PositionService(session, runtime.accounts, runtime.instruments, runtime.last_price, runtime.clock)


Balances = Annotated[BalanceService, Depends(balance_service)]
Trades = Annotated[TradeService, Depends(trade_service)]
Positions = Annotated[PositionService, Depends(position_service)]


def balance_out(row: BalanceRow | Balance) -> BalanceOut:
    return BalanceOut(
        account_id=row.account_id,
        asset=row.asset,
        available=row.available,
        locked=row.locked,
        total=row.available + row.locked,
    )


_BALANCE_LIST = TypeAdapter(list[BalanceOut])


async def balances_answer(read_cache: "ReadCache | None", principal: Principal, balances: BalanceService,
                          account_id: UUID | None, asset: str | None) -> Response:
    """The caller's balances as JSON, from the Redis read cache when it holds them (see ``replicas``)."""
    cache = None if principal.role.reads_everything else read_cache
    query = f"{principal.user_id}|{account_id or '*'}|{asset.upper() if asset else '*'}"
    epoch = 0
    if cache is not None:
        cached = await cache.get_balances(query)
        if cached is not None:
            return Response(cached, media_type="application/json")
        epoch = cache.epoch()
    rows, covered = await balances.find_covering(principal, account_id, asset)
    await balances.session.commit()  # keeps the paper account a first call creates
    body = _BALANCE_LIST.dump_json([balance_out(row) for row in rows])
    if cache is not None and covered is not None:
        await cache.put_balances(query, principal.user_id, covered, body, epoch)
    return Response(body, media_type="application/json")


@router.get("/balances", responses=errors(*READ, 404), response_model=list[BalanceOut], tags=["balances"])
async def list_balances(
    principal: CurrentPrincipal, balances: Balances, runtime: RuntimeDep, account_id: UUID | None = None
) -> Response:
    """The caller's balances per account and asset: available, locked by open orders, total."""
    return await balances_answer(runtime.read_cache, principal, balances, account_id, None)


@router.get("/balances/ledger", responses=errors(*READ, 404), response_model=LedgerPage, tags=["balances"])
async def ledger_entries(
    principal: CurrentPrincipal,
    balances: Balances,
    account_id: UUID | None = None,
    asset: Annotated[str | None, Query(max_length=16)] = None,
    reason: LedgerReason | None = None,
    order_id: UUID | None = None,
    correlation_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> LedgerPage:
    """Ledger entries of the caller's accounts, newest first; every balance equals the sum of its entries."""
    rows = await balances.entries(
        principal,
        account_id=account_id,
        asset=asset,
        reason=reason.value if reason else None,
        order_id=order_id,
        correlation_id=correlation_id,
        limit=limit + 1,
        after=decode_cursor(cursor) if cursor else None,
    )
    await balances.session.commit()  # keeps the paper account a first call creates
    next_cursor = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
    return LedgerPage(
        items=[LedgerEntryOut.model_validate(row, from_attributes=True) for row in rows[:limit]],
        next_cursor=next_cursor,
    )


@router.get("/balances/{asset}", responses=errors(*READ), response_model=list[BalanceOut], tags=["balances"])
async def get_balance(
    asset: Annotated[str, Path(min_length=1, max_length=16)], principal: CurrentPrincipal, balances: Balances,
    runtime: RuntimeDep,
) -> Response:
    """The caller's balance of one asset in each of their accounts."""
    return await balances_answer(runtime.read_cache, principal, balances, None, asset)


@router.post("/balances", responses=errors(*READ, *BODY, 403, 404), response_model=BalanceOut, tags=["balances"])
async def change_balance(body: BalanceChange, principal: CurrentPrincipal, balances: Balances) -> BalanceOut:
    """Deposit, withdraw (negative amount) or set an available balance (admin)."""
    row = await balances.change(principal, body)
    await balances.session.commit()
    return balance_out(row)


@router.post("/balances/transfer", responses=errors(*READ, *BODY, 403, 404), response_model=TransferOut,
             tags=["balances"])
async def transfer(body: TransferIn, principal: CurrentPrincipal, balances: Balances) -> TransferOut:
    """Move available funds between two of the caller's accounts (admin: any two), atomically."""
    correlation, source, target = await balances.transfer(principal, body)
    await balances.session.commit()
    return TransferOut(correlation_id=correlation, from_balance=balance_out(source), to_balance=balance_out(target))


@router.get("/trades", responses=errors(*READ), response_model=TradePage, tags=["trades"])
async def list_trades(
    principal: CurrentPrincipal,
    trades: Trades,
    symbol: Annotated[str | None, Query(max_length=32)] = None,
    side: OrderSide | None = None,
    strategy_id: Annotated[str | None, Query(max_length=64)] = None,
    account_id: UUID | None = None,
    start: QueryTime | None = None,
    end: QueryTime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> TradePage:
    """The caller's trades, newest first, filtered by symbol, side, strategy, account and time range."""
    rows = await trades.find(
        principal,
        symbol=symbol,
        side=side,
        strategy_id=strategy_id,
        account_id=account_id,
        since=start,
        until=end,
        limit=limit + 1,
        after=decode_cursor(cursor) if cursor else None,
    )
    next_cursor = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
    return TradePage(
        items=[TradeOut.model_validate(row, from_attributes=True) for row in rows[:limit]], next_cursor=next_cursor
    )


@router.get("/trades/summary", responses=errors(*READ), response_model=TradeSummary, tags=["trades"])
async def trade_summary(
    principal: CurrentPrincipal,
    trades: Trades,
    symbol: Annotated[str | None, Query(max_length=32)] = None,
    strategy_id: Annotated[str | None, Query(max_length=64)] = None,
    start: QueryTime | None = None,
    end: QueryTime | None = None,
) -> TradeSummary:
    """Count, volume, notional, fees per currency and realized PnL; by symbol, strategy and day."""
    summary = await trades.summary(principal, symbol=symbol, strategy_id=strategy_id, since=start, until=end)
    return TradeSummary.model_validate(summary)


@router.get("/trades/{trade_id:uuid}", responses=errors(*READ, 404), response_model=TradeOut, tags=["trades"])
async def get_trade(trade_id: UUID, principal: CurrentPrincipal, trades: Trades) -> TradeOut:
    """One trade."""
    return TradeOut.model_validate(await trades.get(principal, trade_id), from_attributes=True)


@router.post("/trades", status_code=201, response_model=TradeOut, tags=["trades"],
             responses={200: {"model": TradeOut}} | errors(*READ, *BODY, 403, 404))
async def record_trade(body: TradeIn, principal: CurrentPrincipal, trades: Trades) -> Response:
    """Book a trade made outside the service (admin); a repeated `execution_id` answers 200."""
    row, created = await trades.record(principal, body)
    await trades.session.commit()
    return Response(
        TradeOut.model_validate(row, from_attributes=True).model_dump_json(),
        status_code=201 if created else 200,
        media_type="application/json",
    )


@router.get("/positions", responses=errors(*READ), response_model=list[PositionOut], tags=["positions"])
async def list_positions(
    principal: CurrentPrincipal,
    positions: Positions,
    strategy_id: Annotated[str | None, Query(max_length=64)] = None,
    exchange: Annotated[str | None, Query(max_length=32)] = None,
    account_id: UUID | None = None,
) -> list[PositionOut]:
    """The caller's positions (of one account if given) with the mark price and unrealized PnL."""
    rows = await positions.find(principal, strategy_id=strategy_id, exchange=exchange, account_id=account_id)
    return [PositionOut.model_validate(positions.view(row)) for row in rows]


@router.get("/positions/venue/{account_id:uuid}", responses=errors(*READ, 404, 409, 503),
            response_model=list[VenuePositionOut], tags=["positions"])
async def venue_positions(account_id: UUID, principal: CurrentPrincipal, positions: Positions,
                          runtime: RuntimeDep) -> list[VenuePositionOut]:
    """The open positions of a futures account as its venue reports them: contracts, entry, mark and liquidation
    price, margin, unrealized PnL, leverage (the venue is asked now)."""
    await runtime.accounts.visible_account(principal, account_id, positions.session)
    await positions.session.rollback()  # nothing is held open while the venue answers
    venue = runtime.venues.account_venue(account_id)
    if venue is None:
        raise Conflict(f"account {account_id} has no running venue (disabled, or not a venue account)")
    try:
        held = await venue.fetch_positions()
    except VenueError as error:
        raise Conflict(f"{venue.name} did not answer with its positions (try again): {error}") from None
    return [VenuePositionOut(account_id=account_id, **dataclasses.asdict(item)) for item in held]


@router.post("/positions", responses=errors(*READ, *BODY, 403, 404), response_model=PositionOut, tags=["positions"])
async def set_position(body: PositionSet, principal: CurrentPrincipal, positions: Positions) -> PositionOut:
    """Set a position (admin or risk); the base balance moves by the same delta with the given reason."""
    row = await positions.set(principal, body)
    await positions.session.commit()
    return PositionOut.model_validate(positions.view(row))


@router.post("/positions/close", responses=errors(*READ, *BODY, 403, 404, 409), status_code=201,
             response_model=OrderOut, tags=["positions"])
async def close_position(
    body: PositionClose,
    principal: CurrentPrincipal,
    positions: Positions,
    placements: Placements,
) -> Response:
    """Submit a reduce-only market order closing the whole position or `quantity` of it."""
    principal.require_trading()
    symbol = normalize_symbol(body.symbol)
    held = await positions.open_quantity(principal, body.exchange, symbol, body.strategy_id)
    await positions.session.commit()
    quantity = min(body.quantity or abs(held), abs(held))
    command = PlaceOrder(
        principal=principal,
        symbol=symbol,
        exchange=body.exchange,
        strategy_id=body.strategy_id,
        side=OrderSide.SELL if held > 0 else OrderSide.BUY,
        order_type=OrderType.MARKET,
        quantity=quantity,
        reduce_only=True,
    )
    answer = await placements.place(command)
    return Response(answer.body, status_code=answer.status_code, media_type="application/json")


@router.post("/positions/sync/{exchange}", responses=errors(*READ, 403, 404), response_model=SyncReport,
             tags=["positions"])
async def sync(
    exchange: Annotated[str, Path(min_length=1, max_length=32)],
    principal: CurrentPrincipal,
    session: SessionDep,
    runtime: RuntimeDep,
) -> SyncReport:
    """Rebuild positions from the exchange's record of our fills and report the drift corrected."""
    positions = PositionSync(session, runtime.instruments, runtime.clock)
    asked = await positions.orders_to_ask(principal, exchange)
    if not runtime.venues.on_exchange(exchange):
        raise NotFound(f"exchange {exchange} is not running")
    await session.commit()  # end the read: the venue is asked with no transaction open
    filled = await venue_filled(runtime.venues, exchange, asked)
    report = await positions.correct(principal, exchange, filled)
    accounts = [venue.account_id for venue in runtime.venues.account_venues() if venue.name == exchange]
    owners = {row.id: row.user_id for row in
              (await session.execute(select(AccountRow).where(AccountRow.id.in_(accounts)))).scalars()}
    await session.commit()
    for account_id, user_id in owners.items():
        if principal.can_see(user_id):
            await runtime.venue_accounts.sync_balances(account_id)
    return report


@router.get("/positions/{strategy_id}/{exchange}/{symbol}", responses=errors(*READ, 404), response_model=PositionOut,
            tags=["positions"])
async def position(
    strategy_id: Annotated[str, Path(min_length=1, max_length=64, description="`-` for no strategy")],
    exchange: Annotated[str, Path(min_length=1, max_length=32)],
    symbol: Symbol,
    principal: CurrentPrincipal,
    positions: Positions,
) -> PositionOut:
    """One position."""
    return PositionOut.model_validate(positions.view(await positions.one(principal, strategy_id, exchange, symbol)))


@router.get("/positions/{symbol}", responses=errors(*READ), response_model=list[PositionOut], tags=["positions"])
async def positions_by_symbol(symbol: Symbol, principal: CurrentPrincipal, positions: Positions) -> list[PositionOut]:
    """The caller's positions in one symbol (`BTC-USDT`), across strategies and exchanges."""
    rows = await positions.find(principal, symbol=symbol)
    return [PositionOut.model_validate(positions.view(row)) for row in rows]
