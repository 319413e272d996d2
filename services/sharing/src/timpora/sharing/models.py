"""Tables of the sharing service, all in its own ``sharing`` schema."""

from sqlalchemy import MetaData

from timpora.common.db.inbox import inbox_table

metadata = MetaData()

inbox = inbox_table(metadata)
