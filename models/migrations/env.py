from alembic import context

import models.alerts
import models.charts
import models.chase
import models.console_auth
import models.needs
import models.notices
import models.org
import models.outbox
import models.people
import models.rounds
import models.summary
import models.system  # noqa: F401  (registers the tables on the metadata)
from models.base import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite cannot ALTER most things in place; batch mode copies the table instead.
    render_as_batch=True,
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
