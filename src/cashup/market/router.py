"""HTTP routes of market data: the candles a chart draws, built by the venue from its own market."""

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel

from cashup.api.deps import CurrentPrincipal, RuntimeDep
from cashup.api.errors import READ, errors
from cashup.api.routes import StrictQueryRoute
from cashup.api.types import Amount
from cashup.core.errors import NotFound, UnknownInstrument
from cashup.core.instruments import normalize_symbol
from cashup.venues.paper import PaperExchange

router = APIRouter(tags=["market"], route_class=StrictQueryRoute)


class CandleOut(BaseModel):
    time: datetime
    open: Amount
    high: Amount
    low: Amount
    close: Amount
    volume: Amount


class CandlesOut(BaseModel):
    exchange: str
    symbol: str
    interval_seconds: int
    last_price: Amount | None
    candles: list[CandleOut]


@router.get("/markets/{symbol}/candles", responses=errors(*READ, 404), response_model=CandlesOut)
async def get_candles(
    symbol: Annotated[str, Path(max_length=32)],
    principal: CurrentPrincipal,
    runtime: RuntimeDep,
    exchange: Annotated[str, Query(max_length=32)] = "paper",
    interval_seconds: Annotated[int, Query(ge=1, le=86_400)] = 5,
    limit: Annotated[int, Query(ge=1, le=1000)] = 300,
) -> CandlesOut:
    """The latest candles of a symbol on a venue that keeps its market's history (the paper exchange), oldest
    first; a candle's time is the start of its interval."""
    unified = normalize_symbol(symbol)
    venue = runtime.venues.get(exchange)
    if not isinstance(venue, PaperExchange):
        raise NotFound(f"exchange: {exchange} keeps no market history here (candles come from the paper exchange)",
                       exchange=exchange)
    bars = venue.candles(unified, timedelta(seconds=interval_seconds), limit)
    if bars is None:
        raise UnknownInstrument(unified, exchange)
    return CandlesOut(
        exchange=exchange, symbol=unified, interval_seconds=interval_seconds, last_price=venue.last_price(unified),
        candles=[CandleOut(time=bar.timestamp, open=bar.open, high=bar.high, low=bar.low, close=bar.close,
                           volume=bar.volume) for bar in bars],
    )
