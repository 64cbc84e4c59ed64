"""The instruments the paper exchange lists."""

from decimal import Decimal

from cashup.core.instruments import Instrument

PAPER_INSTRUMENTS = [
    Instrument("BTC/USDT", tick_size=Decimal("0.1"), lot_size=Decimal("0.00001"),
               min_quantity=Decimal("0.00001"), min_notional=Decimal("5")),
    Instrument("ETH/USDT", tick_size=Decimal("0.01"), lot_size=Decimal("0.0001"),
               min_quantity=Decimal("0.0001"), min_notional=Decimal("5")),
]
