"""debpulse-web: datagrepper's query API (and more) over the archive.

Pure parts: `params` (query string to a `Search`), `query` (a `Search` to
SQL), `cursor` (keyset cursors), `shapes` (rows to datagrepper's JSON
shapes), `atom` and `html` (rendering).  I/O: `db` (the connection pool),
`api` (the routes), `app` (the ASGI application) and `cli` (uvicorn).
"""
