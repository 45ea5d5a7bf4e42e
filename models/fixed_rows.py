"""Rows that never change once written, kept in memory: the tree's nodes and the report
rounds.

A node's name, level, path and ancestors are fixed when the roster creates it (a roster
import adds nodes, never edits or deletes one), and a round's dates and form are fixed when
it opens (the retention purge deletes old rounds whole; ids are never given again). Every
report button reads its unit and its round, so reading them once per process and database
saves a query per press, with nothing to invalidate: a webhook replica or a CLI run that adds
rows changes nothing already cached, and a row not found is not remembered (it may be
created the next moment). The cache is kept per engine, so two databases in one process
(tests, the benchmarks) never see each other's rows.
"""

import weakref
from typing import Any, TypeVar, cast

from sqlalchemy import inspect
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from models.base import Base
from models.sqlite_driver import QUICK

# Per model and engine; a county has about 10,000 nodes and a round a day.
MAX_ROWS = 50_000

Row = TypeVar("Row", bound=Base)

_caches: "weakref.WeakKeyDictionary[Engine, dict[type[Base], dict[int, dict[str, Any]]]]" = (
    weakref.WeakKeyDictionary()
)


def column_values(row: Base) -> dict[str, Any]:
    """The row's column values, to build it again with ``as_read``."""
    return {
        attribute.key: getattr(row, attribute.key) for attribute in inspect(row).mapper.column_attrs
    }


def _identity(model: type[Base], row_id: int) -> Any:
    return inspect(model).identity_key_from_primary_key((row_id,))


def as_read(session: AsyncSession, model: type[Row], values: dict[str, Any]) -> Row:
    """The row of ``values`` (a copy kept in memory) in ``session`` as if read there: the
    session's own object when it already holds the row, so that a handler may change it."""
    present = session.sync_session.identity_map.get(_identity(model, values["id"]))
    if present is not None:
        return cast(Row, present)
    # Built as a query's result is, its values set as loaded, without the constructor's
    # events (the constructor of a member costs as much as the rest of this together).
    row = cast(Row, inspect(model).class_manager.new_instance())
    row.__dict__.update(values)
    make_transient_to_detached(row)
    session.add(row)
    return row


async def fixed_row(session: AsyncSession, model: type[Row], row_id: int) -> Row | None:
    """The row with this id, in ``session`` as if read there; from memory once read."""
    present = session.sync_session.identity_map.get(_identity(model, row_id))
    if present is not None:
        return cast(Row, present)
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    rows = _caches.setdefault(engine, {}).setdefault(model, {})
    values = rows.get(row_id)
    if values is None:
        found = await session.get(model, row_id, execution_options=QUICK)
        if found is not None:
            if len(rows) >= MAX_ROWS:
                del rows[next(iter(rows))]
            rows[row_id] = column_values(found)
        return found
    return as_read(session, model, values)
