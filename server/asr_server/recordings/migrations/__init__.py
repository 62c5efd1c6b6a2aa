"""Alembic migrations of the recordings schema, applied by :func:`..database.migrate`."""
