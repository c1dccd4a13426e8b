"""The durable store of alerts, runs, audit events and approvals, on SQLite or PostgreSQL.

`codecs` and `filters` are what both backends share (the fields of each table, their JSON
codecs, the WHERE and ORDER BY clauses); `sqlite/` (the embedded default) and `postgres/`
(`RESPONDER_DATABASE_URL`) each map the store ports onto their own driver.
"""
