"""PostgreSQL plumbing: engines and sessions, the inbox, migrations and the role/schema bootstrap."""
