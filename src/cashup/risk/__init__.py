"""Pre-trade risk: limits per scope, the trading state (kill switch), and the checks before a venue sees an order."""
