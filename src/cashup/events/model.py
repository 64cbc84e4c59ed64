"""What the live-events path carries: one committed change, numbered within its stream.

``stream`` is an account id; ``seq`` counts that stream's events from 1 without gaps. Consumers in the
process (the WebSocket fan-out, notifications) receive events through ``EventSink``.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Event:
    event_id: str
    stream: str
    seq: int
    type: str
    at: datetime
    data: dict[str, Any] = field(default_factory=dict)

    def frame(self) -> dict[str, Any]:
        """The JSON object sent to clients (money stays in Decimal strings inside ``data``)."""
        return {"event_id": self.event_id, "stream": self.stream, "seq": self.seq, "type": self.type,
                "at": self.at.isoformat(), "data": self.data}


class EventSink(Protocol):
    async def deliver(self, events: Sequence[Event]) -> None:
        """Take committed events in stream order; may be called again with an event already seen."""
