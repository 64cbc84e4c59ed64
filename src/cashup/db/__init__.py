"""Persistence: SQLAlchemy models, exact column types, engine and unit of work."""
