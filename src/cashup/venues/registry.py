"""Build the venues this process runs from the settings."""

from cashup.config import Settings
from cashup.venues.base import Venue
from cashup.venues.manual import ManualVenue
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
    """``PAPER_EXCHANGE_URL`` set: the shared paper exchange process; otherwise an embedded one.

    Each name in ``MANUAL_EXCHANGES`` adds a venue whose fills are reported from outside, priced by the paper feed.
    """
    paper: Venue
    if settings.paper_exchange_url:
        paper = RemotePaperVenue(settings.paper_exchange_url, timeout=settings.paper_exchange_timeout_seconds)
    else:
        paper = PaperExchange(paper_exchange_config(settings, journal_path=embedded_journal_path(settings)))
    venues: dict[str, Venue] = {paper.name: paper}
    for name in settings.manual_exchange_names:
        venues[name] = ManualVenue(name, paper)
    return venues


def embedded_journal_path(settings: Settings) -> str | None:
    """Where the embedded paper exchange keeps its journal: ``PAPER_JOURNAL_PATH``, by default under ``STATE_DIR``.

    ``PAPER_JOURNAL_PATH=memory`` keeps it in memory only (its resting orders are forgotten on restart).
    """
    configured = settings.paper_journal_path
    if configured is not None and configured.strip().lower() in ("memory", ":memory:"):
        return None
    if configured:
        return configured
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    return str(settings.state_dir / "paper-journal.db")
