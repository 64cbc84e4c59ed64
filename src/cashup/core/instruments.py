"""Tradable instruments and the rules an order must meet on them."""

from dataclasses import dataclass
from decimal import Decimal

from cashup.core.errors import InvalidOrder
from cashup.core.money import ZERO, is_multiple_of, round_down_to_step, round_to_step


def split_symbol(symbol: str) -> tuple[str, str]:
    """``BTC/USDT`` → ``("BTC", "USDT")``; a contract's settlement suffix is dropped (``BTC/USDT:USDT``)."""
    base, _, quote = symbol.partition("/")
    return base, quote.partition(":")[0]


@dataclass(frozen=True, slots=True)
class Instrument:
    """A spot pair as a venue lists it: ``BTC/USDT`` with its tick, lot and minimum notional."""

    symbol: str
    tick_size: Decimal
    lot_size: Decimal
    min_quantity: Decimal
    min_notional: Decimal
    contract_size: Decimal = Decimal(1)
    """Base units per contract for a perpetual (``BTC/USDT:USDT``); 1 for a spot pair."""

    @property
    def base(self) -> str:
        return split_symbol(self.symbol)[0]

    @property
    def quote(self) -> str:
        return split_symbol(self.symbol)[1]

    @property
    def is_contract(self) -> bool:
        return ":" in self.symbol

    def round_price(self, price: Decimal) -> Decimal:
        return round_to_step(price, self.tick_size)

    def round_quantity_down(self, quantity: Decimal) -> Decimal:
        return round_down_to_step(quantity, self.lot_size)

    def check_quantity(self, quantity: Decimal, field: str = "quantity") -> None:
        if quantity <= ZERO:
            raise InvalidOrder(field, "must_be_positive", f"{field}: must be greater than 0")
        if not is_multiple_of(quantity, self.lot_size):
            raise InvalidOrder(field, "lot_size", f"{field}: must be a multiple of the lot size {self.lot_size}")
        if quantity < self.min_quantity:
            raise InvalidOrder(field, "min_quantity", f"{field}: must be at least {self.min_quantity}")

    def check_price(self, price: Decimal, field: str = "price") -> None:
        if price <= ZERO:
            raise InvalidOrder(field, "must_be_positive", f"{field}: must be greater than 0")
        if not is_multiple_of(price, self.tick_size):
            raise InvalidOrder(field, "tick_size", f"{field}: must be a multiple of the tick size {self.tick_size}")

    @property
    def settlement(self) -> str:
        """The currency a contract settles (and is margined) in: ``USDT`` of ``BTC/USDT:USDT``; the quote of a pair."""
        return self.symbol.partition(":")[2] or self.quote

    def check_notional(self, quantity: Decimal, price: Decimal) -> None:
        notional = quantity * self.contract_size * price
        if notional < self.min_notional:
            raise InvalidOrder(
                "quantity",
                "min_notional",
                f"quantity: notional {notional} is below the minimum {self.min_notional} {self.quote}",
            )


def normalize_symbol(raw: str) -> str:
    """Accept ``BTC/USDT``, ``BTC-USDT``, ``BTC_USDT`` (any case) and return the unified ``BTC/USDT``; a
    perpetual keeps its settlement currency (``BTC/USDT:USDT``)."""
    text = raw.strip().upper().replace("-", "/").replace("_", "/").replace("%2F", "/").replace("%3A", ":")
    pair, colon, settle = text.partition(":")
    parts = pair.split("/")
    if len(parts) != 2 or not all(part.isalnum() for part in parts) or (colon and not settle.isalnum()):
        raise InvalidOrder("symbol", "format", f"symbol: {raw!r} is not of the form BASE/QUOTE or BASE/QUOTE:SETTLE")
    return text


class InstrumentRegistry:
    """The instruments known per exchange."""

    def __init__(self, instruments: dict[str, list[Instrument]] | None = None) -> None:
        self._by_exchange: dict[str, dict[str, Instrument]] = {}
        for exchange, listed in (instruments or {}).items():
            for instrument in listed:
                self.add(exchange, instrument)

    def add(self, exchange: str, instrument: Instrument) -> None:
        self._by_exchange.setdefault(exchange, {})[instrument.symbol] = instrument

    def get(self, exchange: str, symbol: str) -> Instrument | None:
        return self._by_exchange.get(exchange, {}).get(symbol)

    def exchanges(self) -> list[str]:
        return sorted(self._by_exchange)

    def symbols(self, exchange: str) -> list[str]:
        return sorted(self._by_exchange.get(exchange, {}))

