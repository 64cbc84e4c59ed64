"""Which venue serves an order: the named venues (paper) and one CCXT venue per real venue account."""

from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING
from uuid import UUID

from cashup.core.instruments import InstrumentRegistry
from cashup.venues.base import Venue

if TYPE_CHECKING:  # CCXT is imported only when an account opens
    from cashup.venues.ccxt.venue import CcxtVenue


class VenueDirectory(Mapping[str, Venue]):
    """Maps exchange names to the named venues (as a ``Mapping``) and resolves ``(exchange, account_id)``:
    an account with a venue of its own (a real exchange) uses it, any other the exchange's named venue."""

    def __init__(self, named: Mapping[str, Venue], instruments: InstrumentRegistry) -> None:
        self._named = dict(named)
        self._accounts: dict[UUID, CcxtVenue] = {}
        self.instruments = instruments

    def __getitem__(self, exchange: str) -> Venue:
        return self._named[exchange]

    def __iter__(self) -> Iterator[str]:
        return iter(self._named)

    def __len__(self) -> int:
        return len(self._named)

    def resolve(self, exchange: str, account_id: UUID | None) -> Venue | None:
        """The venue for an order of ``account_id`` on ``exchange``, or ``None`` if none runs."""
        if account_id is not None and (venue := self._accounts.get(account_id)) is not None:
            return venue if venue.name == exchange else None
        return self._named.get(exchange)

    def account_venue(self, account_id: UUID) -> "CcxtVenue | None":
        return self._accounts.get(account_id)

    def leverage(self, account_id: UUID, symbol: str) -> Decimal | None:
        """The leverage of the account's position in a contract, as its venue last said; ``None`` if unknown."""
        venue = self._accounts.get(account_id)
        return venue.leverage(symbol) if venue is not None else None

    def account_venues(self) -> list["CcxtVenue"]:
        return list(self._accounts.values())

    def on_exchange(self, exchange: str) -> list[Venue]:
        """Every venue on ``exchange``: its named venue, or the venues of its accounts."""
        if exchange in self._named:
            return [self._named[exchange]]
        return [venue for venue in self._accounts.values() if venue.name == exchange]

    def add_account(self, venue: "CcxtVenue") -> None:
        """Serve ``venue.account_id`` with ``venue`` and list its instruments under its exchange."""
        self._accounts[venue.account_id] = venue
        self.register_instruments(venue)

    def remove_account(self, account_id: UUID) -> "CcxtVenue | None":
        return self._accounts.pop(account_id, None)

    def register_instruments(self, venue: "CcxtVenue") -> None:
        for instrument in venue.instruments():
            self.instruments.add(venue.name, instrument)

    def last_price(self, exchange: str, symbol: str) -> Decimal | None:
        """The first price any venue on ``exchange`` has for ``symbol``."""
        for venue in self.on_exchange(exchange):
            if (price := venue.last_price(symbol)) is not None:
                return price
        return None
