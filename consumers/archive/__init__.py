"""debpulse-archive: every verified bus message kept in PostgreSQL.

`rows` turns a received message into the row it is stored as (pure),
`partitions` works out time partitions and their retention (pure),
`schema` is the database's shape, `store` the database I/O and `cli` the
subscriber loop.  The web API (`debpulse.consumers.web`) reads what this
writes.
"""
