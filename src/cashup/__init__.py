"""CashUp Order Service: order management and execution for quantitative crypto trading."""

__version__ = "0.1.0"
