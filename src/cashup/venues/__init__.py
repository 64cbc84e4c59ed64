"""Venues: where orders are executed (the built-in paper exchange, CCXT exchanges)."""
