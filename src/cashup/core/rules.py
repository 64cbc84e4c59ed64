"""The figures from the settings that admission and the algorithms need, as one frozen object."""

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from cashup.core.risk import RiskLimits


@dataclass(frozen=True, slots=True)
class TradingRules:
    """Fee rates per exchange, the market-order protection band, default risk limits and algorithm defaults."""

    fee_rates: Mapping[str, Decimal]
    protection_band: Decimal
    default_limits: RiskLimits
    twap_default_slices: int = 10
    twap_default_interval: int = 60
    iceberg_default_visible_ratio: Decimal = Decimal("0.1")

    def fee_rate(self, exchange: str) -> Decimal:
        return self.fee_rates.get(exchange, Decimal("0.002"))
