"""Call records: the PostgreSQL schema, the write-behind recorder and its spool, reports."""
