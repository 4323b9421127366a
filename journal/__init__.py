"""The DuckDB event log: schema, buffered appends, transactions, hash chain, queries.

``Journal`` is the only public name; docs/journal.md describes the table, the durability
contract, the segment format and ``verify()``.
"""
from .store import Journal

__all__ = ["Journal"]
