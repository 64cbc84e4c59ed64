"""The desk: the trading monitor, risk and operations pages served at ``/``, plain ES modules in ``static/``."""
