"""The Gate.io dialect's USDT perpetual futures endpoints: account, account book, orders, trades,
positions and leverage. Sizes are signed whole contracts of ``CONTRACT_SIZES`` base units."""

from decimal import Decimal
from typing import Any

from cashup.core.enums import OrderSide, OrderType, TimeInForce
from cashup.core.money import ZERO
from cashup.venues.paper.dialects.accounts import FUTURES_SETTLE, Account
from cashup.venues.paper.dialects.asgi import Call, decimal_param, milliseconds, plain
from cashup.venues.paper.dialects.gateio_common import (
    GateEndpoints,
    contracts_value,
    error,
    finish_as,
    float_seconds,
    invalid_argument,
    market_id,
    number_text,
)
from cashup.venues.paper.dialects.records import (
    CONTRACT_SIZES,
    FUTURES,
    MAX_LEVERAGE,
    Order,
    Refusal,
    Status,
    Ticket,
    Trade,
)


class GateFuturesEndpoints(GateEndpoints):
    """USDT-settled perpetuals (``/futures/usdt/...``)."""

    async def futures_account(self, account: Account, *_: Any) -> dict[str, Any]:
        futures = account.futures
        unrealised = position_margin = ZERO
        for position in futures.positions.values():
            size = CONTRACT_SIZES[position.contract]
            mark = self.venue.last_price(FUTURES, position.contract) or position.entry_price
            unrealised += position.unrealised_pnl(mark, size)
            position_margin += position.margin(size)
        return {
            "user": self._user_id(account), "currency": FUTURES_SETTLE, "total": plain(futures.total),
            "unrealised_pnl": plain(unrealised), "position_margin": plain(position_margin),
            "order_margin": plain(futures.order_margin), "available": plain(self.venue.futures_available(account)),
            "point": "0", "bonus": "0", "in_dual_mode": False, "enable_credit": False,
            "position_initial_margin": plain(position_margin), "maintenance_margin": "0",
            "enable_evolved_classic": True, "cross_initial_margin": "0", "cross_maintenance_margin": "0",
            "cross_order_margin": "0", "cross_unrealised_pnl": "0", "cross_available": "0",
            "cross_margin_balance": "0", "isolated_position_margin": plain(position_margin),
            "margin_mode_name": "classic",
            "history": {"dnw": plain(futures.total), "pnl": "0", "fee": "0", "refr": "0", "fund": "0",
                        "point_dnw": "0", "point_fee": "0", "point_refr": "0", "bonus_dnw": "0",
                        "bonus_offset": "0"},
        }

    async def account_book(self, account: Account, call: Call, *_: Any) -> list[dict[str, Any]]:
        """The futures wallet's changes, newest first."""
        kind, name = call.query.get("type"), call.query.get("contract")
        symbol = self._contract(name).symbol if name else None
        entries = [entry for entry in self.venue.account_book(account)
                   if (kind is None or entry.kind == kind) and (symbol is None or entry.contract == symbol)]
        start, end = call.query.get("from"), call.query.get("to")
        if start and start.isdigit():
            entries = [entry for entry in entries if milliseconds(entry.at) >= int(start) * 1000]
        if end and end.isdigit():
            entries = [entry for entry in entries if milliseconds(entry.at) < (int(end) + 1) * 1000]
        return [
            {"id": str(entry.id), "time": float_seconds(entry.at), "change": plain(entry.change),
             "balance": plain(entry.balance), "type": entry.kind, "text": market_id(entry.contract),
             "contract": market_id(entry.contract), "trade_id": ""}
            for entry in self._page(entries[::-1], call)
        ]

    async def futures_create(self, account: Account, _call: Call, body: dict[str, Any], _: list[str]) -> Any:
        item = self._contract(body.get("contract"))
        size = decimal_param(number_text(body.get("size")), "size", invalid_argument)
        if size is None or size == 0 or size != size.to_integral_value():
            raise error(400, "INVALID_PARAM_VALUE", "size: a non-zero whole number of contracts is required")
        price = decimal_param(number_text(body.get("price")), "price", invalid_argument)
        if price is None:
            raise error(400, "MISSING_REQUIRED_PARAM", "price is required (0 for a market order)")
        tif = str(body.get("tif", "gtc")).lower()
        if tif not in ("gtc", "ioc", "poc", "fok"):
            raise invalid_argument("tif")
        market = price == 0
        if market and tif not in ("ioc", "fok"):
            raise error(400, "INVALID_PARAM_VALUE", "a market order (price 0) needs tif ioc or fok")
        reduce_only = bool(body.get("reduce_only")) or bool(body.get("close"))
        ticket = Ticket(
            FUTURES, item.symbol, OrderSide.BUY if size > 0 else OrderSide.SELL,
            OrderType.MARKET if market else OrderType.LIMIT, abs(size), None if market else price, None,
            TimeInForce.GTC if tif in ("gtc", "poc") else TimeInForce(tif.upper()), tif == "poc", reduce_only,
            self._text(body.get("text")),
        )
        return self.futures_json(await self._place(account, ticket))

    def futures_json(self, order: Order) -> dict[str, Any]:
        finished = order.status is not Status.OPEN
        finish = None
        if order.status is Status.FILLED:
            finish = "filled"
        elif finished:
            finish = finish_as(order)
        sign = order.side.sign
        tif = "poc" if order.post_only else ("ioc" if order.order_type is OrderType.MARKET
                                              and order.time_in_force is TimeInForce.GTC
                                              else order.time_in_force.value.lower())
        return {
            "id": order.id, "user": self._user_id(self.venue.accounts[order.account]),
            "contract": market_id(order.symbol), "create_time": float_seconds(order.created_at),
            "update_time": float_seconds(order.updated_at),
            "finish_time": float_seconds(order.updated_at) if finished else None,
            "finish_as": finish, "status": "finished" if finished else "open",
            "size": contracts_value(order.quantity * sign), "left": contracts_value(order.remaining * sign),
            "iceberg": 0, "price": plain(order.price) if order.price is not None else "0",
            "fill_price": plain(order.average_price) if order.filled else "0",
            "mkfr": plain(self.venue.config.maker_fee_rate), "tkfr": plain(self.venue.config.taker_fee_rate),
            "tif": tif, "refu": 0, "is_reduce_only": order.reduce_only, "is_close": False, "is_liq": False,
            "text": order.client_id or "api", "stp_id": 0, "stp_act": "-", "amend_text": "-",
        }

    async def futures_get(self, account: Account, _call: Call, _body: dict[str, Any], groups: list[str]) -> Any:
        return self.futures_json(self._find(account, FUTURES, groups[0]))

    async def futures_cancel(self, account: Account, _call: Call, _body: dict[str, Any], groups: list[str]) -> Any:
        order = self._find(account, FUTURES, groups[0])
        await self._cancel(account, order)
        return self.futures_json(order)

    async def futures_cancel_all(self, account: Account, call: Call, *_: Any) -> list[dict[str, Any]]:
        """Cancel the open orders of a contract (of one ``side`` if given)."""
        symbol = self._contract(call.query.get("contract")).symbol
        return [self.futures_json(order) for order in await self._cancel_all(account, FUTURES, symbol, call)]

    async def futures_amend(self, account: Account, _call: Call, body: dict[str, Any], groups: list[str]) -> Any:
        order = self._find(account, FUTURES, groups[0])
        size = decimal_param(number_text(body.get("size")), "size", invalid_argument)
        price = decimal_param(number_text(body.get("price")), "price", invalid_argument)
        await self._amend(account, order, None if size is None else abs(size), price)
        return self.futures_json(order)

    async def futures_list(self, account: Account, call: Call, *_: Any) -> list[dict[str, Any]]:
        name = call.query.get("contract")
        symbol = self._contract(name).symbol if name else None
        status = call.query.get("status", "open")
        if status not in ("open", "finished"):
            raise invalid_argument("status")
        orders = [order for order in self.venue.orders(account, FUTURES, symbol)
                  if order.is_open == (status == "open")]
        return [self.futures_json(order) for order in self._page(orders, call)]

    async def futures_trades(self, account: Account, call: Call, *_: Any) -> list[dict[str, Any]]:
        name = call.query.get("contract")
        symbol = self._contract(name).symbol if name else None
        return [self.futures_trade_json(account, trade) for trade in self._trades(account, FUTURES, symbol, call)]

    def futures_trade_json(self, account: Account, trade: Trade) -> dict[str, Any]:
        return {"id": trade.id, "trade_id": str(trade.id), "create_time": float_seconds(trade.at),
                "create_time_ms": milliseconds(trade.at), "contract": market_id(trade.symbol),
                "order_id": str(trade.order_id), "size": contracts_value(trade.quantity * trade.side.sign),
                "close_size": 0, "price": plain(trade.price), "role": trade.liquidity.value,
                "text": (self._client_id(account, trade) or "api"), "fee": plain(trade.fee), "point_fee": "0"}

    def _client_id(self, account: Account, trade: Trade) -> str | None:
        order = self.venue.find(account, FUTURES, order_id=trade.order_id)
        return order.client_id if order else None

    def _position_json(self, account: Account, symbol: str) -> dict[str, Any]:
        position = account.futures.position(symbol)
        size = CONTRACT_SIZES[symbol]
        mark = self.venue.last_price(FUTURES, symbol) or ZERO
        value = abs(position.size) * size * mark
        liquidation = ZERO
        if position.size:
            direction = Decimal(1) if position.size > 0 else Decimal(-1)
            liquidation = position.entry_price * (1 - direction / position.leverage)
        return {
            "user": self._user_id(account), "contract": market_id(symbol), "size": contracts_value(position.size),
            "leverage": plain(position.leverage), "risk_limit": "1000000", "leverage_max": plain(MAX_LEVERAGE),
            "maintenance_rate": "0.005", "value": plain(value), "margin": plain(position.margin(size)),
            "entry_price": plain(position.entry_price), "liq_price": plain(liquidation), "mark_price": plain(mark),
            "initial_margin": plain(position.margin(size)), "maintenance_margin": "0",
            "unrealised_pnl": plain(position.unrealised_pnl(mark, size)),
            "realised_pnl": plain(position.realised_pnl), "pnl_pnl": plain(position.trade_pnl),
            "pnl_fund": plain(position.funding), "pnl_fee": plain(-position.fees),
            "history_pnl": plain(position.realised_pnl), "last_close_pnl": plain(position.last_close_pnl),
            "realised_point": "0", "history_point": "0", "adl_ranking": 6, "pending_orders": len(
                [order for order in self.venue.orders(account, FUTURES, symbol, open_only=True)]),
            "close_order": None, "mode": "single", "cross_leverage_limit": "0",
            "update_time": milliseconds(self._clock()) // 1000, "open_time": 0,
        }

    async def positions(self, account: Account, call: Call, *_: Any) -> list[dict[str, Any]]:
        holding = call.query.get("holding") == "true"
        return [
            self._position_json(account, item.symbol) for item in self.venue.instruments(FUTURES)
            if not holding or account.futures.position(item.symbol).size
        ]

    async def position(self, account: Account, _call: Call, _body: dict[str, Any], groups: list[str]) -> Any:
        return self._position_json(account, self._contract(groups[0]).symbol)

    async def leverage(self, account: Account, call: Call, _body: dict[str, Any], groups: list[str]) -> Any:
        item = self._contract(groups[0])
        leverage = decimal_param(call.query.get("leverage"), "leverage", invalid_argument)
        if leverage is None:
            raise error(400, "MISSING_REQUIRED_PARAM", "leverage is required")
        if leverage == 0:
            raise error(400, "POSITION_CROSS_MARGIN", "cross margin is not served; give a leverage from 1")
        try:
            self.venue.set_leverage(account, item.symbol, leverage)
        except Refusal:
            label = "LEVERAGE_TOO_HIGH" if leverage > MAX_LEVERAGE else "LEVERAGE_TOO_LOW"
            raise error(400, label, f"leverage must be from 1 to {MAX_LEVERAGE}") from None
        return self._position_json(account, item.symbol)

