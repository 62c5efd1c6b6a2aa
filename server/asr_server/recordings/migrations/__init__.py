"""Alembic migrations of the recordings schema, applied by :func:`..database.migrate`."""

__all__: list[str] = []
