"""Limits and trading states held in memory, reloaded when another transaction has changed them."""

from collections.abc import Mapping
from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cashup.core.risk import RiskLimits, ScopeKey, TradingState, resolve_limits, scope_keys, strictest_state
from cashup.db.cache_versions import CacheName, CacheVersions, version_of
from cashup.db.models import RiskLimitRow, TradingStateRow
from cashup.risk.service import LIMIT_FIELDS


@dataclass(frozen=True, slots=True)
class RiskSnapshot:
    """Every limit and trading state as one read saw them; answers without touching the database."""

    versions: tuple[int, int]
    """The versions of the limits and of the trading states the snapshot was loaded at."""
    defaults: RiskLimits
    limits: Mapping[ScopeKey, RiskLimits]
    states: Mapping[ScopeKey, TradingState]

    def limits_for(self, user_id: str, account_id: UUID | None, strategy_id: str | None) -> RiskLimits:
        """The most restrictive of the defaults (or the global row) and every user / account / strategy row."""
        return resolve_limits(self.defaults, self.limits, scope_keys(user_id, account_id, strategy_id))

    def trading_state_for(self, user_id: str, account_id: UUID | None) -> TradingState:
        """The most severe trading state set globally, for the user or for the account."""
        return strictest_state(
            self.states[key] for key in scope_keys(user_id, account_id, None) if key in self.states
        )


class RiskCache:
    """Limits and trading states of every scope, kept in memory for admission.

    Answers the same as ``RiskRepository.limits_for`` and ``trading_state_for``. Each call first asks
    ``CacheVersions`` (at most one small query per check interval, through the caller's session); when
    the limits or the states have a new version, it reloads both tables through that session before
    answering. It never opens a session or a transaction of its own, so it is safe inside any unit of work.
    """

    def __init__(self, versions: CacheVersions, defaults: RiskLimits) -> None:
        self.versions = versions
        self.defaults = defaults
        self._snapshot: RiskSnapshot | None = None
        self.loads = 0
        """How many times the tables were read."""

    async def snapshot(self, session: AsyncSession) -> RiskSnapshot:
        """The limits and states, fresh to within the check interval; a batch can answer many orders from one."""
        current = await self.versions.current(session)
        wanted = (version_of(current, CacheName.RISK_LIMITS), version_of(current, CacheName.TRADING_STATES))
        snapshot = self._snapshot
        if snapshot is None or snapshot.versions != wanted:
            snapshot = await self._load(session, wanted)
            self._snapshot = snapshot
        return snapshot

    async def limits_for(
        self, user_id: str, account_id: UUID | None, strategy_id: str | None, *, session: AsyncSession
    ) -> RiskLimits:
        """The limits in force for an order of ``user_id`` in ``account_id`` for ``strategy_id``."""
        return (await self.snapshot(session)).limits_for(user_id, account_id, strategy_id)

    async def trading_state_for(self, user_id: str, account_id: UUID | None, *, session: AsyncSession) -> TradingState:
        """The trading state in force for ``user_id`` in ``account_id``."""
        return (await self.snapshot(session)).trading_state_for(user_id, account_id)

    async def _load(self, session: AsyncSession, versions: tuple[int, int]) -> RiskSnapshot:
        # Read after the versions: what is read is at least as new as they are, so a later bump reloads again.
        limit_columns = [getattr(RiskLimitRow, name) for name in LIMIT_FIELDS]
        limit_rows = (await session.execute(select(RiskLimitRow.scope, RiskLimitRow.scope_id, *limit_columns))).all()
        limits = {(scope, scope_id): RiskLimits(*figures) for scope, scope_id, *figures in limit_rows}
        state_rows = (await session.execute(select(TradingStateRow.scope, TradingStateRow.scope_id,
                                                   TradingStateRow.state))).all()
        states = {(scope, scope_id): TradingState(state) for scope, scope_id, state in state_rows}
        self.loads += 1
        return RiskSnapshot(versions=versions, defaults=self.defaults, limits=limits, states=states)
