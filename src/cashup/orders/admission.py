"""Admission of a new order: what it must lock, and whether the risk rules let it through."""

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cashup.core.instruments import Instrument
from cashup.core.principal import Principal
from cashup.core.reservation import Reservation, protected_price, required_lock
from cashup.core.risk import OrderIntent, RiskContext, RiskDenial, RiskLimits, check_order, projected_position
from cashup.db.models import BalanceRow
from cashup.orders.schemas import OrderCreate
from cashup.risk.cache import RiskCache
from cashup.risk.service import RiskRepository


@dataclass(frozen=True, slots=True)
class TradingRules:
    """Figures from the settings that admission needs."""

    fee_rates: Mapping[str, Decimal]
    protection_band: Decimal
    default_limits: RiskLimits
    twap_default_slices: int = 10
    twap_default_interval: int = 60
    iceberg_default_visible_ratio: Decimal = Decimal("0.1")

    def fee_rate(self, exchange: str) -> Decimal:
        return self.fee_rates.get(exchange, Decimal("0.002"))


@dataclass(frozen=True, slots=True)
class Assessment:
    reservation: Reservation
    reserve_price: Decimal
    fee_rate: Decimal
    limits: RiskLimits
    context: RiskContext
    denial: RiskDenial | None
    projected_position: Decimal


class Admission:
    def __init__(self, session: AsyncSession, risk: RiskRepository, rules: TradingRules, cache: RiskCache) -> None:
        self.session = session
        self.risk = risk
        self.rules = rules
        self.cache = cache

    async def assess(
        self, principal: Principal, body: OrderCreate, instrument: Instrument, account_id: UUID, mark: Decimal,
        *, lock_balance: bool,
    ) -> Assessment:
        """Gather the figures and run the rules. With ``lock_balance`` the balance row stays locked until commit,
        so concurrent orders of one account are admitted one after another."""
        fee_rate = self.rules.fee_rate(body.exchange)
        reserve_price = self.reserve_price(body, instrument, mark)
        reservation = required_lock(body.side, body.quantity, reserve_price, fee_rate, instrument)
        available = await self._available(account_id, reservation.asset, lock_balance)
        limits = await self.cache.limits_for(principal.user_id, account_id, body.strategy_id, session=self.session)
        position = await self.risk.position_quantity(account_id, body.strategy_id, body.exchange, instrument.symbol)
        context = RiskContext(
            mark_price=mark,
            position_quantity=position,
            open_orders=await self.risk.open_orders(principal.user_id),
            recent_orders_user=await self.risk.recent_orders(user_id=principal.user_id),
            recent_orders_account=await self.risk.recent_orders(account_id=account_id),
            required_lock=reservation.amount,
            available_balance=available,
            lock_asset=reservation.asset,
            trading_state=await self.cache.trading_state_for(principal.user_id, account_id, session=self.session),
        )
        intent = OrderIntent(side=body.side, quantity=body.quantity, price=body.price,
                             reduce_only=body.reduce_only, is_market=body.price is None)
        return Assessment(
            reservation=reservation, reserve_price=reserve_price, fee_rate=fee_rate, limits=limits, context=context,
            denial=check_order(intent, context, limits),
            projected_position=projected_position(position, body.side, body.quantity),
        )

    def reserve_price(self, body: OrderCreate, instrument: Instrument, mark: Decimal) -> Decimal:
        """The price funds are reserved at: the limit price, or a protected price around the trigger or mark."""
        if body.price is not None:
            return body.price
        reference = body.trigger_price if body.trigger_price is not None else mark
        return protected_price(body.side, reference, self.rules.protection_band, instrument)

    async def _available(self, account_id: UUID, asset: str, lock: bool) -> Decimal:
        query = select(BalanceRow.available).where(BalanceRow.account_id == account_id, BalanceRow.asset == asset)
        if lock:
            query = query.with_for_update()
        return (await self.session.scalar(query)) or Decimal(0)
