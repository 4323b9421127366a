"""The DuckDB event log: schema, buffered appends, transactions, hash chain, queries."""
