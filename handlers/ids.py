"""Ids carried by callback data. A modified client can send any number: one past its
column's range makes PostgreSQL fail the statement instead of finding nothing, so such a
button does not match its filter at all and counts as stale."""

from typing import Annotated

from pydantic import Field

# Rows' own ids (nodes, posts…) are INTEGER columns, so within int32 and positive.
ROW_ID_MAX = 2**31 - 1

RowId = Annotated[int, Field(gt=0, le=ROW_ID_MAX)]
# A page, a revision, or an id where 0 means "none" or "the top" (the county).
Number = Annotated[int, Field(ge=0, le=ROW_ID_MAX)]
