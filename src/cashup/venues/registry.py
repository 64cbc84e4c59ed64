"""Build the venues this process runs from the settings."""

from cashup.config import Settings
from cashup.venues.base import Venue
from cashup.venues.paper.exchange import PaperExchange, PaperExchangeConfig


def build_venues(settings: Settings) -> dict[str, Venue]:
    paper = PaperExchange(
        PaperExchangeConfig(
            seed=settings.paper_seed,
            maker_fee_rate=settings.paper_maker_fee_rate,
            taker_fee_rate=settings.paper_taker_fee_rate,
            tick_seconds=settings.paper_tick_seconds,
            replay_speed=settings.paper_replay_speed,
        )
    )
    return {paper.name: paper}
