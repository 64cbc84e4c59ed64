"""Real exchanges (Binance, Gate.io) through CCXT: one client per venue account."""
