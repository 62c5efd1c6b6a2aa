"""Alembic's environment: runs on the connection :func:`..database.migrate` hands it.

There is no ``alembic.ini``; the gateway applies the migrations itself at startup, inside
the transaction that holds the migration lock.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from asr_server.recordings.tables import metadata

VERSION_TABLE = "recordings_alembic_version"
"""Alembic's bookkeeping table, named so that it cannot clash with another component's."""

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("run the migrations with asr_server.recordings.database.migrate")
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
