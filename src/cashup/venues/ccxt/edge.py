"""The pure edge between CCXT and the service: numbers, client order ids, errors, markets.

Each concern is one function, so every CCXT value and every CCXT failure crosses into the service the same way.
"""

import re
from decimal import Decimal, InvalidOperation
from typing import Any

import ccxt.async_support as ccxt

from cashup.core.instruments import Instrument
from cashup.venues.errors import (
    VenueAccountBroken,
    VenueDuplicateOrder,
    VenueError,
    VenueOrderNotFound,
    VenueRateLimited,
    VenueRejected,
    VenueUnavailable,
)

CCXT_CLASS = {"binance": "binance", "gateio": "gate"}

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_GATE_PREFIX = "t-"
_BINANCE_PREFIX = "cu"
_HEX32 = re.compile(r"^[0-9a-f]{32}$")


def to_decimal(value: Any) -> Decimal | None:
    """The one conversion of a CCXT number (string, int or float in CCXT's default number mode) to Decimal.

    Strings are exact. A float went through CCXT's own parsing of the venue's decimal string: its shortest
    ``repr`` gives that string back for every value of up to 15 significant digits, which is what venues send.
    ``None`` and ``""`` stay ``None``; anything else that is not a finite number is an error.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation as error:
            raise ValueError(f"not a number: {value!r}") from error
    else:
        raise ValueError(f"not a number: {value!r}")
    if not number.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return number


def wire(value: Decimal) -> str:
    """A Decimal as the plain string CCXT sends (no exponent), so no float sits between us and the wire."""
    return format(value, "f")


def venue_side_client_id(exchange: str, client_order_id: str) -> str:
    """The client order id the venue gets for our ``client_order_id`` (the hex of our order id), within its rules.

    Gate.io: ``t-`` and at most 28 of ``[0-9A-Za-z_.-]`` after it: the 128-bit id in base 62 (22 characters).
    Binance: at most 36 of ``[.A-Z:/a-z0-9_-]``: ``cu`` and the 32 hex digits.
    """
    if not _HEX32.match(client_order_id):
        raise ValueError(f"client order id {client_order_id!r} is not the 32 hex digits of an order id")
    if exchange == "gateio":
        number = int(client_order_id, 16)
        digits = []
        while number:
            number, remainder = divmod(number, 62)
            digits.append(_BASE62[remainder])
        return _GATE_PREFIX + "".join(reversed(digits)).rjust(22, "0")
    if exchange == "binance":
        return _BINANCE_PREFIX + client_order_id
    raise ValueError(f"exchange {exchange!r} is not supported through CCXT")


def our_client_id(exchange: str, venue_client_id: str | None) -> str | None:
    """Our client order id back from the venue's, or ``None`` for an order we did not place (manual trades)."""
    if not venue_client_id:
        return None
    if exchange == "gateio" and venue_client_id.startswith(_GATE_PREFIX):
        body = venue_client_id[len(_GATE_PREFIX):]
        if len(body) != 22 or any(char not in _BASE62 for char in body):
            return None
        number = 0
        for char in body:
            number = number * 62 + _BASE62.index(char)
        return f"{number:032x}" if number < 1 << 128 else None
    if exchange == "binance" and venue_client_id.startswith(_BINANCE_PREFIX):
        body = venue_client_id[len(_BINANCE_PREFIX):]
        return body if _HEX32.match(body) else None
    return None


def venue_error(error: Exception, exchange: str) -> VenueError:
    """The one mapping of CCXT errors onto venue errors.

    Rate limit / DDoS protection → ``VenueRateLimited`` (back off). Network error, timeout, venue unavailable
    → ``VenueUnavailable``: the order may or may not exist, so reconcile by client id, never re-send blindly.
    Binance's "Duplicate order sent." → ``VenueDuplicateOrder``: it exists, reconcile. Order not found →
    ``VenueOrderNotFound``. Authentication / permission → ``VenueAccountBroken``. Insufficient funds, invalid
    order, bad symbol or request → ``VenueRejected`` with the venue's message. Anything else from the venue is
    treated as an unknown outcome.
    """
    message = _message(error, exchange)
    if isinstance(error, ccxt.RateLimitExceeded | ccxt.DDoSProtection):
        return VenueRateLimited(f"{exchange} asks to slow down: {message}")
    if isinstance(error, ccxt.NetworkError):
        return VenueUnavailable(f"{exchange} did not answer clearly ({type(error).__name__}): {message}")
    if "duplicate order" in message.lower():
        return VenueDuplicateOrder(f"{exchange} already has this client order id: {message}")
    if isinstance(error, ccxt.OrderNotFound):
        return VenueOrderNotFound(f"{exchange}: {message}")
    if isinstance(error, ccxt.AuthenticationError):
        return VenueAccountBroken(f"{exchange} refused the account's credentials: {message}")
    if isinstance(error, ccxt.InsufficientFunds | ccxt.InvalidOrder | ccxt.BadRequest | ccxt.NotSupported):
        return VenueRejected(f"{exchange}: {message}")
    return VenueUnavailable(f"{exchange} failed ({type(error).__name__}): {message}")


def _message(error: Exception, exchange: str) -> str:
    """CCXT prefixes the exchange id and may append the raw body; keep it short and without our keys."""
    text = str(error).strip()
    for prefix in (CCXT_CLASS.get(exchange, exchange), exchange):
        if text.startswith(prefix + " "):
            text = text[len(prefix) + 1:]
    return text[:300] or type(error).__name__


def instrument_from_market(market: dict[str, Any]) -> Instrument:
    """An ``Instrument`` from a CCXT market: tick and lot from the precision (TICK_SIZE mode), minimum quantity
    and notional from the limits, contract size for contracts (1 for spot)."""
    precision = market.get("precision") or {}
    limits = market.get("limits") or {}
    tick = to_decimal(precision.get("price"))
    lot = to_decimal(precision.get("amount"))
    if tick is None or lot is None or tick <= 0 or lot <= 0:
        raise ValueError(f"market {market.get('symbol')} has no usable price or amount precision")
    min_quantity = to_decimal((limits.get("amount") or {}).get("min")) or lot
    min_notional = to_decimal((limits.get("cost") or {}).get("min")) or Decimal(0)
    contract_size = to_decimal(market.get("contractSize")) if market.get("contract") else None
    return Instrument(
        symbol=str(market["symbol"]),
        tick_size=tick,
        lot_size=lot,
        min_quantity=max(min_quantity, lot),
        min_notional=min_notional,
        contract_size=contract_size or Decimal(1),
    )
