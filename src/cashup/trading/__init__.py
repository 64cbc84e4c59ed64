"""The books: balances with a double-entry ledger, trades, positions."""
