"""Build the venues this process runs from the settings."""

from cashup.config import Settings
from cashup.venues.base import Venue
from cashup.venues.paper.config import PaperExchangeConfig
from cashup.venues.paper.exchange import PaperExchange
from cashup.venues.paper.faults import FaultConfig
from cashup.venues.remote import RemotePaperVenue


def paper_exchange_config(settings: Settings, *, journal_path: str | None = None) -> PaperExchangeConfig:
    """The paper exchange the settings describe (the embedded one, or the one `cashup paper-exchange` runs)."""
    return PaperExchangeConfig(
        seed=settings.paper_seed,
        maker_fee_rate=settings.paper_maker_fee_rate,
        taker_fee_rate=settings.paper_taker_fee_rate,
        tick_seconds=settings.paper_tick_seconds,
        replay_speed=settings.paper_replay_speed,
        manual=settings.paper_manual_market,
        journal_path=journal_path,
        faults=FaultConfig(
            latency_seconds=settings.paper_latency_seconds,
            reject_rate=settings.paper_reject_rate,
            accept_then_timeout_rate=settings.paper_accept_then_timeout_rate,
            drop_response_rate=settings.paper_drop_response_rate,
        ),
    )


def build_venues(settings: Settings) -> dict[str, Venue]:
    """``PAPER_EXCHANGE_URL`` set: the shared paper exchange process; otherwise an embedded one."""
    paper: Venue
    if settings.paper_exchange_url:
        paper = RemotePaperVenue(settings.paper_exchange_url, timeout=settings.paper_exchange_timeout_seconds)
    else:
        paper = PaperExchange(paper_exchange_config(settings, journal_path=settings.paper_journal_path))
    return {paper.name: paper}
