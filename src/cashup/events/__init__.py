"""Live events: the outbox, its relay, and the consumers that fan events out."""

from cashup.events.model import Event, EventSink

__all__ = ["Event", "EventSink"]
