"""Tables of the alerts service, all in its own ``alerts`` schema."""

from sqlalchemy import MetaData

from timpora.common.db.inbox import inbox_table

metadata = MetaData()

inbox = inbox_table(metadata)
