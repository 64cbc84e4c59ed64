"""Real exchanges (Binance, Gate.io) through CCXT: one client per venue account.

CCXT itself is imported by ``edge`` and ``venue`` only, so a process without venue accounts never pays for it.
"""

EXCHANGES = ("binance", "gateio")
"""The venues the CCXT adapter supports, by the names orders and accounts use."""
