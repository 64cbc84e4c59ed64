"""Everything one process runs, wired once: database, venues, engine, and the pieces the API needs."""

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from cashup.accounts.cache import AccountCache
from cashup.accounts.service import AccountDirectory
from cashup.accounts.venue_accounts import VenueAccounts
from cashup.config import Settings
from cashup.core.instruments import InstrumentRegistry
from cashup.core.risk import RiskLimits
from cashup.core.rules import TradingRules
from cashup.db.cache_notifications import can_listen, listen_for_changes
from cashup.db.cache_versions import CacheVersions, session_info
from cashup.db.session import create_engine, create_sessionmaker
from cashup.engine.reports import ReportApplier
from cashup.engine.retention import HistoryRetention
from cashup.engine.worker import Worker
from cashup.events.broker import RabbitPublisher
from cashup.events.bus import Bus, PostgresBus, RedisBus
from cashup.events.fanout import Fanout, SharedSignals, outbox_reader
from cashup.events.hub import Hub
from cashup.events.outbox import ON_EVENTS_KEY
from cashup.events.relay import Relay
from cashup.execution.placement import Placement
from cashup.risk.cache import RiskCache
from cashup.venues.directory import VenueDirectory
from cashup.venues.registry import build_venues

log = structlog.get_logger("cashup.runtime")


def utc_now() -> datetime:
    return datetime.now(UTC)


class Runtime:
    def __init__(
        self, settings: Settings, *, clock: Callable[[], datetime] = utc_now, run_worker: bool | None = None
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.engine: AsyncEngine = create_engine(settings)
        self.cache_versions = CacheVersions(settings.cache_check_interval_ms / 1000)
        self.sessions = create_sessionmaker(self.engine, info=session_info(self.cache_versions)
                                            | {ON_EVENTS_KEY: self._events_written})
        self.signals = SharedSignals()
        self.hub = Hub(self.sessions, queue_size=settings.ws_queue_size)
        publisher = RabbitPublisher(settings.broker_url, settings.events_exchange) if settings.broker_url else None
        self.relay = Relay(self.sessions, publisher=publisher, sinks=[self.hub], batch=settings.events_relay_batch,
                           poll_seconds=settings.events_relay_poll_seconds)
        self.account_cache = AccountCache(self.cache_versions)
        self.accounts = AccountDirectory(self.account_cache, clock, paper_funding=settings.initial_paper_balances)
        named = build_venues(settings)
        self.instruments = InstrumentRegistry({name: venue.instruments() for name, venue in named.items()})
        self.venues = VenueDirectory(named, self.instruments)
        self.rules = TradingRules(
            fee_rates={"paper": max(settings.paper_taker_fee_rate, settings.paper_maker_fee_rate)},
            protection_band=settings.market_protection_band,
            twap_default_slices=settings.twap_default_slices,
            twap_default_interval=settings.twap_default_interval,
            iceberg_default_visible_ratio=settings.iceberg_default_visible_ratio,
            default_limits=RiskLimits(
                max_order_value=settings.max_order_value,
                max_position_value=settings.max_position_size,
                max_open_orders=settings.max_orders_per_user,
                price_band=settings.risk_price_band,
                max_orders_per_minute_user=settings.max_orders_per_minute_user,
                max_orders_per_minute_account=settings.max_orders_per_minute_account,
            ),
        )
        self.risk_cache = RiskCache(self.cache_versions, self.rules.default_limits)
        self.placement = Placement(accounts=self.accounts, instruments=self.instruments, prices=self.last_price,
                                   rules=self.rules, risk_cache=self.risk_cache,
                                   clock=clock)
        self.applier = ReportApplier(self.sessions, self.signals, clock)
        self.run_worker = settings.embedded_worker if run_worker is None else run_worker
        bus = self._bus()
        self.fanout = None if bus is None else Fanout(
            bus, self.signals, deliver=self.hub.deliver, read=outbox_reader(self.sessions),
            wake_relay=self.relay.wake if self.run_worker else None)
        if self.fanout is not None:
            self.relay.on_sent = self.fanout.events_sent
        if self.run_worker or not settings.paper_exchange_url:
            # An API process without a worker leaves a shared exchange's reports to the workers that book them.
            for name, venue in self.venues.items():
                venue.set_report_sink(self.applier.sink_for(name))
        self.venue_accounts = VenueAccounts(self.sessions, self.venues, settings, clock,
                                            self.applier.sink_for if self.run_worker else None,
                                            self.applier.drain, self.accounts)
        self.worker = Worker(
            self.sessions,
            self.venues,
            self.signals,
            clock,
            self.instruments,
            concurrency=settings.worker_concurrency,
            poll_seconds=settings.worker_poll_seconds,
            lease_seconds=settings.lease_seconds,
            action_timeout_seconds=settings.order_timeout_seconds,
            max_attempts=settings.worker_max_attempts,
            heartbeat_seconds=settings.worker_heartbeat_seconds,
            placement=self.placement,
            rules=self.rules,
            trigger_poll_seconds=settings.trigger_poll_seconds,
        )
        self._tasks: list[asyncio.Task[None]] = []

    def _bus(self) -> Bus | None:
        """What carries events and wake-ups to the other processes: Redis when configured, else LISTEN/NOTIFY on
        PostgreSQL, else nothing (one process)."""
        if self.settings.redis_url:
            return RedisBus(self.settings.redis_url, self.settings.events_channel_prefix)
        if can_listen(self.engine):
            return PostgresBus(self.engine, self.settings.events_channel_prefix)
        return None

    def _events_written(self) -> None:
        """A commit in this process wrote events: a relay sends them now rather than at its next poll."""
        if self.run_worker:
            self.relay.wake()
        elif self.fanout is not None:
            self.fanout.send("outbox", "")

    def last_price(self, exchange: str, symbol: str) -> Decimal | None:
        return self.venues.last_price(exchange, symbol)

    def venue_reports_fills(self, exchange: str) -> bool:
        """Whether the service sees the fills of orders on ``exchange`` itself (unknown exchanges count as yes)."""
        venue = self.venues.get(exchange)
        return venue is None or venue.reports_fills

    async def start(self) -> None:
        for venue in self.venues.values():
            await venue.start()
        await self.venue_accounts.start()
        self._tasks.append(asyncio.create_task(self.applier.run(), name="report-applier"))
        if can_listen(self.engine):
            self._tasks.append(asyncio.create_task(listen_for_changes(self.engine, self.cache_versions),
                                                   name="cache-notifications"))
        if self.fanout is not None:
            self._tasks.append(asyncio.create_task(self.fanout.run(), name="fanout"))
        if self.run_worker:
            self._tasks.append(asyncio.create_task(self.relay.run(), name="event-relay"))
            self._tasks.append(asyncio.create_task(self.worker.run(), name="worker"))
            self._tasks.append(asyncio.create_task(HistoryRetention(
                self.sessions, self.clock, self.settings.order_history_retention_days).run(), name="retention"))
        log.info("runtime started", venues=sorted(self.venues), worker=self.run_worker,
                 database=self.settings.database_url)

    async def stop(self) -> None:
        await self.venue_accounts.stop()
        for venue in self.venues.values():
            await venue.stop()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await self.applier.drain()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.relay.stop()
        await self.engine.dispose()
