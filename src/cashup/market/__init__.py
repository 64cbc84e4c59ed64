"""Market data read from the venues: candles of the paper exchange's market."""
