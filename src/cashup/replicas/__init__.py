"""State that API replicas share through Redis when ``REDIS_URL`` is set: rate limits and a read cache."""
