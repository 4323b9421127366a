"""One exception hierarchy for everything gridtape raises on bad input or failed work.

Every error carries the location it is about (file, table, row, field) as attributes
and in its message, so a user can find the offending cell without a debugger.
"""
from __future__ import annotations


class GridtapeError(Exception):
    """Base class of every gridtape error.

    ``file``, ``table``, ``row`` and ``field`` name where the problem is, when known.
    """

    def __init__(self, message: str, *, file=None, table=None, row=None, field=None):
        self.file, self.table, self.row, self.field = file, table, row, field
        where = []
        if file is not None:
            where.append(f"file {file!s}")
        if table is not None:
            where.append(f"table {table!r}")
        if row is not None:
            where.append(f"row {row!r}")
        if field is not None:
            where.append(f"field {field!r}")
        self.message = message
        super().__init__(f"{message} [{', '.join(where)}]" if where else message)


class CaseError(GridtapeError):
    """A case file cannot be read: missing, unreadable, or not of the format it claims."""


class SchemaError(GridtapeError):
    """Data do not fit the schema registry: unknown kind or column, wrong type, value out of range."""


class BadReferenceError(GridtapeError):
    """An element refers to an entity that does not exist (a branch to a missing bus, ...)."""


class TopologyError(GridtapeError):
    """The network cannot be solved as given: no slack, or an inconsistent topology."""


class SolverError(GridtapeError):
    """The numerical engine failed in a way that is not a plain non-convergence."""


class NotSolvedError(GridtapeError):
    """Results were asked for before any solve."""


class DependencyError(GridtapeError):
    """An optional dependency (pandapower, lightsim2grid, grid2op) is needed for this call."""


class JournalError(GridtapeError):
    """The journal cannot do what was asked (closed, read-only, or a bad transaction)."""


class JournalLockedError(JournalError):
    """The journal file is held by another writer process; ``file`` is its path."""


class JournalCorruptError(JournalError):
    """The journal's hash chain or framing is broken; ``row`` is the first bad seq."""


class ReadOnlyError(GridtapeError):
    """A write to a grid that is read-only (a materialized point of history, a read-only journal)."""


class SnapshotCorruptError(GridtapeError):
    """A snapshot file is missing or its bytes do not match the manifest; ``file`` names it."""


class CheckpointWarning(UserWarning):
    """An automatic checkpoint written in the background failed: the journal records nothing for
    it and ``grid.checkpoint_error`` holds the exception (see docs/time-travel.md)."""


__all__ = [
    "GridtapeError",
    "CaseError",
    "SchemaError",
    "BadReferenceError",
    "TopologyError",
    "SolverError",
    "NotSolvedError",
    "DependencyError",
    "JournalError",
    "JournalLockedError",
    "JournalCorruptError",
    "ReadOnlyError",
    "SnapshotCorruptError",
    "CheckpointWarning",
]
