"""Alembic environment: socialcredit always passes an open connection in ``config.attributes``."""

from alembic import context

import socialcredit.status.schema  # noqa: F401
from socialcredit.ledger.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
