"""Venue accounts: register, list, rotate and disable them, and run one CCXT venue per enabled account.

``VenueAccounts`` belongs to the runtime: at start it refuses to run when credentials are stored and no
``CREDENTIALS_KEY`` is set, then opens a venue for every enabled account (markets, orders still working, balances).
``AccountService`` is the API's view: it checks roles and ownership and asks ``VenueAccounts`` to (re)open.
"""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Literal
from uuid import UUID

import structlog
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cashup.accounts.credentials import CredentialCipher, CredentialsKeyMissing, key_hint
from cashup.accounts.schemas import AccountCreate, AccountOut, AccountUpdate, LeverageIn, LeverageOut
from cashup.accounts.service import AccountDirectory
from cashup.config import Settings
from cashup.core import ledger
from cashup.core.enums import OrderStatus, Role
from cashup.core.errors import Conflict, InvalidOrder, NotFound
from cashup.core.ids import new_id
from cashup.core.ledger import InsufficientFunds
from cashup.core.principal import Principal
from cashup.core.settlement import settle_funding
from cashup.db.models import AccountRow, BalanceRow, FundingPaymentRow, OrderRow, TradeRow, UserRow, sent_to_a_venue
from cashup.trading.ledger_store import LedgerStore
from cashup.trading.positions import PositionRepository, position_state, store_position
from cashup.trading.schemas import TradeIn
from cashup.trading.trades import TradeService
from cashup.venues.base import ReportSink, cancel_and_wait
from cashup.venues.ccxt import EXCHANGES
from cashup.venues.directory import VenueDirectory
from cashup.venues.errors import VenueError, VenueRejected

if TYPE_CHECKING:  # CCXT is imported only when an account opens
    from cashup.venues.ccxt.venue import CcxtVenue, ExternalTrade, VenueBalance

log = structlog.get_logger("cashup.accounts")
OPEN_STATUSES = [status.value for status in OrderStatus if not status.is_final]
SYSTEM = Principal("cashup-venue-sync", Role.ADMIN)


class VenueAccounts:
    """The CCXT venues of the enabled venue accounts, kept in the runtime's ``VenueDirectory``."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        directory: VenueDirectory,
        settings: Settings,
        clock: Callable[[], datetime],
        sink_for: Callable[[str], ReportSink] | None,
        drain: Callable[[], Awaitable[None]] | None = None,
        accounts: AccountDirectory | None = None,
    ) -> None:
        self.sessions = sessions
        self.directory = directory
        self.settings = settings
        self.clock = clock
        self.cipher = CredentialCipher(settings.credentials_key)
        self._sink_for = sink_for
        self._drain = drain
        self._accounts = accounts
        self._tasks: list[asyncio.Task[None]] = []
        self._opened: dict[UUID, datetime | None] = {}
        """The ``updated_at`` of each account row when its venue was opened."""

    async def start(self) -> None:
        """Open every enabled account's venue; refuse to start with stored credentials and no key. A database
        that does not answer yet leaves the accounts to the periodic refresh."""
        try:
            rows = await self._rows()
        except (SQLAlchemyError, OSError) as error:
            log.warning("venue accounts not loaded: the database does not answer; retrying", error=str(error))
        else:
            self._require_key(rows)
            await self.refresh(rows)
        self._tasks.append(asyncio.create_task(self._refresh_forever(), name="venue-accounts-refresh"))
        if self._sink_for is not None:
            self._tasks.append(asyncio.create_task(self._sync_forever(), name="venue-balance-sync"))

    async def refresh(self, rows: list[AccountRow] | None = None) -> None:
        """Follow the accounts table: open new or changed enabled accounts, close disabled ones (another process
        may have registered, rotated or disabled them)."""
        rows = await self._rows() if rows is None else rows
        self._require_key(rows)
        for row in rows:
            wanted = row.enabled and row.exchange in EXCHANGES
            running = self.directory.account_venue(row.id) is not None
            if wanted and (not running or self._opened.get(row.id) != row.updated_at):
                await self.open(row)
            elif not wanted and running:
                await self.close(row.id)

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        await cancel_and_wait(tasks)
        for venue in self.directory.account_venues():
            await venue.stop()
            self.directory.remove_account(venue.account_id)

    async def open(self, row: AccountRow) -> "CcxtVenue":
        """(Re)start the venue of ``row`` with its current credentials."""
        from cashup.venues.ccxt.venue import AccountConfig, CcxtVenue

        await self.close(row.id)
        assert row.api_key_encrypted is not None and row.secret_encrypted is not None
        self._opened[row.id] = row.updated_at
        config = AccountConfig(
            account_id=row.id,
            exchange=row.exchange,
            market=row.market,
            api_key=self.cipher.decrypt(row.api_key_encrypted),
            secret=self.cipher.decrypt(row.secret_encrypted),
            passphrase=self.cipher.decrypt(row.passphrase_encrypted) if row.passphrase_encrypted else None,
            sandbox=row.sandbox,
            api_url=row.api_url,
        )
        venue = CcxtVenue(
            config,
            poll_seconds=self.settings.ccxt_poll_seconds,
            stream=self.settings.ccxt_websocket,
            timeout_seconds=self.settings.ccxt_timeout_seconds,
            markets_refresh_seconds=self.settings.ccxt_markets_refresh_seconds,
            on_broken=self.mark_broken,
            clock=self.clock,
        )
        if self._sink_for is not None:
            venue.set_report_sink(self._sink_for(row.exchange))
            venue.set_external_sink(self.book_external, await self._external_since(row))
        await venue.start()
        self.directory.add_account(venue)
        await self._follow_working_orders(venue)
        if venue.broken is None and self._sink_for is not None:  # the processes that book the venue's reports
            try:
                await self.sync_balances(row.id)
            except (VenueError, InsufficientFunds) as error:
                log.warning("venue balances not synced", account_id=str(row.id), error=str(error))
        log.info("venue account open", account_id=str(row.id), exchange=row.exchange, market=row.market,
                 instruments=len(venue.instruments()), broken=venue.broken is not None)
        return venue

    async def close(self, account_id: UUID) -> None:
        venue = self.directory.remove_account(account_id)
        if venue is not None:
            await venue.stop()

    async def mark_broken(self, account_id: UUID, reason: str) -> None:
        """Record that the venue refused the account's credentials (readiness reports it)."""
        async with self.sessions() as session:
            await session.execute(update(AccountRow).where(AccountRow.id == account_id)
                                  .values(broken_reason=reason[:255]))
            await session.commit()

    async def sync_balances(self, account_id: UUID) -> "list[VenueBalance] | None":
        """Make the ledger's total of each asset equal the venue's, booking any drift as an adjustment.

        Only while none of the account's orders is working and every report has been booked: a fill the venue
        has counted and we have not booked yet is not drift. Returns ``None`` when it did not sync for that.
        """
        venue = self.directory.account_venue(account_id)
        if venue is None:
            raise NotFound(f"account {account_id} has no running venue")
        if venue.following():
            return None
        if self._drain is not None:
            await self._drain()
        await self.book_funding(account_id)  # a funding payment is not drift
        balances = await venue.fetch_balances()
        if venue.following():
            return None
        async with self.sessions() as session:
            store = LedgerStore(session, self.clock)
            rows = await store.balances([(account_id, balance.asset) for balance in balances])
            known = {row.asset: row for row in (await session.execute(
                select(BalanceRow).where(BalanceRow.account_id == account_id))).scalars()}
            wanted = {balance.asset: balance.total for balance in balances}
            for asset, row in {**known, **{key[1]: row for key, row in rows.items()}}.items():
                drift = wanted.get(asset, Decimal(0)) - (row.available + row.locked)
                if drift != 0:
                    await store.post([ledger.adjustment(account_id, asset, drift,
                                                        f"venue-sync:{account_id.hex[:8]}:{new_id().hex}")])
                    log.info("venue balance drift booked", account_id=str(account_id), asset=asset, drift=str(drift))
            await session.commit()
        return balances

    async def book_funding(self, account_id: UUID) -> int:
        """Book the futures account's funding payments since the last one booked (or since it was registered), each
        once by its venue id: the settlement currency moves against the venue and the position's ``funding``
        follows. Returns how many were booked."""
        venue = self.directory.account_venue(account_id)
        if venue is None or venue.market != "futures" or venue.broken is not None:
            return 0
        async with self.sessions() as session:
            account = await session.get(AccountRow, account_id)
            if account is None:
                return 0
            since = await session.scalar(select(func.max(FundingPaymentRow.paid_at)).where(
                FundingPaymentRow.account_id == account_id)) or account.created_at
        payments = await venue.fetch_funding(None, since)
        if not payments:
            return 0
        booked = 0
        async with self.sessions() as session:
            known = set((await session.execute(select(FundingPaymentRow.venue_id).where(
                FundingPaymentRow.account_id == account_id,
                FundingPaymentRow.venue_id.in_([payment.funding_id for payment in payments])))).scalars())
            store = LedgerStore(session, self.clock)
            positions = PositionRepository(session)
            for payment in payments:
                if payment.funding_id in known or not payment.amount:
                    continue
                known.add(payment.funding_id)
                now = self.clock()
                session.add(FundingPaymentRow(id=new_id(), account_id=account_id, venue_id=payment.funding_id[:64],
                                              symbol=payment.symbol, amount=payment.amount, currency=payment.currency,
                                              paid_at=payment.at or now, booked_at=now))
                available = await store.available(account_id, payment.currency)
                await store.post([ledger.funding(account_id, account.exchange, payment.currency, payment.amount,
                                                 f"funding:{account_id.hex[:8]}:{payment.funding_id}"[:64],
                                                 available)])
                rows = [row for row in await positions.find(account_id=account_id, symbol=payment.symbol,
                                                            for_update=True) if row.quantity]
                row = rows[0] if rows else await positions.locked(account_id, account.user_id, None, account.exchange,
                                                                  payment.symbol, now)
                store_position(row, settle_funding(position_state(row), payment.amount), now)
                booked += 1
            try:
                await session.commit()
            except IntegrityError:  # another process booked them first
                await session.rollback()
                return 0
        if booked:
            log.info("venue funding booked", account_id=str(account_id), payments=booked)
        return booked

    async def book_external(self, account_id: UUID, trade: "ExternalTrade") -> None:
        """Book a venue fill of an order we did not place, once, as an external trade (balances, position)."""
        if self._accounts is None:
            return
        if self._drain is not None:
            await self._drain()  # a fill of ours waiting in the queue is not external
        async with self.sessions() as session:
            known = await session.scalar(select(TradeRow.id).where(
                TradeRow.account_id == account_id, TradeRow.execution_id == trade.execution_id).limit(1))
            ours = trade.exchange_order_id is not None and await session.scalar(select(OrderRow.id).where(
                OrderRow.account_id == account_id, OrderRow.exchange_order_id == trade.exchange_order_id).limit(1))
            if known is not None or ours:
                return
            body = TradeIn(account_id=account_id, symbol=trade.symbol, side=trade.side, quantity=trade.quantity,
                           price=trade.price, fee=trade.fee, fee_currency=trade.fee_currency,
                           execution_id=trade.execution_id, executed_at=trade.at, liquidity=trade.liquidity)
            service = TradeService(session, self._accounts, self.directory.instruments, self.clock)
            venue = self.directory.account_venue(account_id)
            row, created = await service.record(SYSTEM, body,
                                                leverage=venue.leverage(trade.symbol) if venue is not None else None)
            if created:
                row.source = "external"
            await session.commit()
        log.info("external venue trade booked", account_id=str(account_id), execution_id=trade.execution_id,
                 symbol=trade.symbol, side=trade.side.value, quantity=str(trade.quantity))

    async def _external_since(self, row: AccountRow) -> datetime:
        """Trades after the last one booked on the account (or since it was registered) may be external."""
        async with self.sessions() as session:
            latest = await session.scalar(select(func.max(TradeRow.executed_at)).where(
                TradeRow.account_id == row.id))
        return latest or row.created_at

    def _require_key(self, rows: list[AccountRow]) -> None:
        if rows and not self.cipher.configured:
            raise CredentialsKeyMissing(
                f"{len(rows)} venue account(s) have stored credentials but CREDENTIALS_KEY is not set; "
                "set the key they were encrypted with"
            )

    async def _rows(self) -> list[AccountRow]:
        async with self.sessions() as session:
            return list((await session.execute(
                select(AccountRow).where(AccountRow.api_key_encrypted.is_not(None))
            )).scalars())

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.ccxt_accounts_refresh_seconds)
            try:
                await self.refresh()
            except Exception:
                log.exception("venue accounts not refreshed")

    async def _sync_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.ccxt_balance_sync_seconds)
            for venue in self.directory.account_venues():
                if venue.broken is not None:
                    continue
                try:
                    await self.book_funding(venue.account_id)
                    await self.sync_balances(venue.account_id)
                except (VenueError, InsufficientFunds) as error:
                    log.warning("venue balances not synced", account_id=str(venue.account_id), error=str(error))
                except Exception:
                    log.exception("venue balance sync failed", account_id=str(venue.account_id))

    def health(self) -> dict[str, str]:
        """``account:<id>`` → ``ok`` or why not, for every venue account this process runs."""
        return {
            f"account:{venue.account_id}": "ok" if venue.broken is None else f"broken: {venue.broken}"
            for venue in self.directory.account_venues()
        }

    async def _follow_working_orders(self, venue: "CcxtVenue") -> None:
        async with self.sessions() as session:
            rows = (await session.execute(select(OrderRow.venue_client_order_id, OrderRow.symbol,
                                                 OrderRow.exchange_order_id).where(
                OrderRow.account_id == venue.account_id, OrderRow.status.in_(OPEN_STATUSES),
                sent_to_a_venue()))).all()
        for client_id, symbol, exchange_order_id in rows:
            if client_id is not None:
                venue.track(client_id, symbol, exchange_order_id)


def account_out(row: AccountRow) -> AccountOut:
    status: Literal["ok", "broken", "disabled"] = (
        "disabled" if not row.enabled else "broken" if row.broken_reason else "ok")
    return AccountOut(
        id=row.id, user_id=row.user_id, exchange=row.exchange, market=row.market, label=row.name,
        sandbox=row.sandbox, api_url=row.api_url, enabled=row.enabled, status=status,
        broken_reason=row.broken_reason, has_credentials=row.api_key_encrypted is not None,
        api_key_hint=row.api_key_hint, created_at=row.created_at, updated_at=row.updated_at,
    )


class AccountService:
    """What the accounts API does, with the caller's rights checked."""

    def __init__(self, session: AsyncSession, venues: VenueAccounts) -> None:
        self.session = session
        self.venues = venues
        self.clock = venues.clock

    async def create(self, principal: Principal, body: AccountCreate) -> AccountRow:
        principal.require(Role.ADMIN)
        cipher = self._cipher()
        if await self.session.get(UserRow, body.user_id) is None:
            self.session.add(UserRow(id=body.user_id, role=Role.TRADER.value, created_at=self.clock()))
            await self.session.flush()
        row = AccountRow(
            id=new_id(), user_id=body.user_id, exchange=body.exchange, name=body.label, created_at=self.clock(),
            market=body.market, api_key_encrypted=cipher.encrypt(body.api_key),
            secret_encrypted=cipher.encrypt(body.secret),
            passphrase_encrypted=cipher.encrypt(body.passphrase) if body.passphrase else None,
            api_key_hint=key_hint(body.api_key), sandbox=body.sandbox, api_url=body.api_url, enabled=True,
        )
        self.session.add(row)
        try:
            await self.session.commit()
        except IntegrityError as error:
            await self.session.rollback()
            raise Conflict(f"user {body.user_id} already has a {body.exchange} account labelled {body.label!r}") \
                from error
        await self.venues.open(row)
        await self.session.refresh(row)
        return row

    async def list(self, principal: Principal) -> list[AccountRow]:
        query = select(AccountRow).order_by(AccountRow.created_at, AccountRow.id)
        if not principal.role.reads_everything:
            query = query.where(AccountRow.user_id == principal.user_id)
        return list((await self.session.execute(query)).scalars())

    async def get(self, principal: Principal, account_id: UUID) -> AccountRow:
        row = await self.session.get(AccountRow, account_id)
        if row is None or not principal.can_see(row.user_id):
            raise NotFound(f"account {account_id} not found")
        return row

    async def update(self, principal: Principal, account_id: UUID, body: AccountUpdate) -> AccountRow:
        principal.require(Role.ADMIN)
        row = await self.get(principal, account_id)
        cipher = self.venues.cipher
        if body.api_key is not None or body.passphrase is not None:
            cipher = self._cipher()
        if body.label is not None:
            row.name = body.label
        if body.api_key is not None and body.secret is not None:
            if row.exchange not in EXCHANGES:
                raise InvalidOrder("api_key", "not_a_venue_account", f"api_key: {row.exchange} takes no keys")
            row.api_key_encrypted = cipher.encrypt(body.api_key)
            row.secret_encrypted = cipher.encrypt(body.secret)
            row.api_key_hint = key_hint(body.api_key)
            row.broken_reason = None
        if body.passphrase is not None:
            row.passphrase_encrypted = cipher.encrypt(body.passphrase)
        for name in ("enabled", "sandbox", "api_url"):
            if (value := getattr(body, name)) is not None:
                setattr(row, name, value)
        row.updated_at = self.clock()
        try:
            await self.session.commit()
        except IntegrityError as error:
            await self.session.rollback()
            raise Conflict(f"the user already has a {row.exchange} account labelled {body.label!r}") from error
        if row.exchange in EXCHANGES and row.api_key_encrypted is not None:
            if row.enabled:
                await self.venues.open(row)
            else:
                await self.venues.close(row.id)
        await self.session.refresh(row)
        return row

    def _cipher(self) -> CredentialCipher:
        if not self.venues.cipher.configured:
            raise Conflict("credentials cannot be stored: CREDENTIALS_KEY is not set on the service "
                           "(see the README: Fernet.generate_key())")
        return self.venues.cipher

    async def set_leverage(self, principal: Principal, account_id: UUID, body: LeverageIn) -> LeverageOut:
        principal.require_trading()
        row = await self.get(principal, account_id)
        if row.market != "futures":
            raise InvalidOrder("account_id", "not_futures", f"account_id: account {account_id} trades {row.market}")
        venue = self.venues.directory.account_venue(account_id)
        if venue is None:
            raise Conflict(f"account {account_id} is disabled or its venue is not running")
        if venue.instruments() and body.symbol not in {instrument.symbol for instrument in venue.instruments()}:
            raise InvalidOrder("symbol", "unknown_instrument", f"symbol: {body.symbol} is not traded on gateio")
        try:
            await venue.set_leverage(body.symbol, body.leverage, body.margin_mode)
        except VenueRejected as error:
            raise InvalidOrder("leverage", "venue_refused", f"leverage: {venue.name} refused it: {error}") from None
        except VenueError as error:
            raise Conflict(f"{venue.name} did not set the leverage (try again): {error}") from None
        return LeverageOut(account_id=account_id, symbol=body.symbol, leverage=body.leverage,
                           margin_mode=body.margin_mode)
