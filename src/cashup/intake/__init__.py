"""Order requests from the message broker: consume, place once, answer, and compensate failures."""
