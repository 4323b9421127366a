"""One exception hierarchy for everything gridtape raises on bad input or failed work.

Every error carries the location it is about (file, table, row, field) as attributes
and in its message, so a user can find the offending cell without a debugger.

Every gridtape error is also an instance of the builtin exception that matches its meaning (as
NumPy's ``AxisError`` is a ``ValueError`` and an ``IndexError``), so code that catches builtins
keeps working::

    GridtapeError                    Exception
    ├── CaseError                    ValueError          a case file cannot be read
    ├── SchemaError                  ValueError          a value does not fit the schema
    │   └── UnsupportedError         + NotImplementedError  a pandapower feature gridtape does not model
    ├── OptionError                  ValueError          an unknown option or a bad option value
    ├── BadReferenceError            LookupError + ValueError  a reference to a missing element
    ├── TopologyError                ValueError          the network cannot be solved as given
    ├── SolverError                  RuntimeError        the numerical engine failed
    ├── NotSolvedError               RuntimeError        results asked for before a solve
    ├── DependencyError              ImportError         an optional package is missing
    ├── JournalError                 RuntimeError        the journal cannot do what was asked
    │   ├── JournalLockedError                           held by another writer
    │   ├── JournalCorruptError      + ValueError        damaged bytes
    │   └── ConflictError                                a revert, cherry-pick or merge meets later changes
    │       ├── RevertConflictError
    │       └── MergeConflictError                       (merge and cherry-pick)
    ├── ReadOnlyError                PermissionError     a write to a read-only grid or journal
    ├── SnapshotCorruptError         ValueError          damaged snapshot bytes
    └── SnapshotError                OSError             a snapshot cannot be written (disk full, read-only)

BadReferenceError is a ``LookupError`` (the thing looked up is missing) and not a ``KeyError``,
whose ``str()`` would print the message as a quoted repr; it is also a ``ValueError`` because it
is bad input like the other reader errors, so ``except ValueError`` around a load catches all of
them.  ``UnsupportedError`` stays a SchemaError (what readers raised before it existed).
"""
from __future__ import annotations


class GridtapeError(Exception):
    """Base class of every gridtape error.

    ``file``, ``table``, ``row`` and ``field`` name where the problem is, when known.
    """

    def __init__(self, message: str, *, file=None, table=None, row=None, field=None):
        self.file, self.table, self.row, self.field = file, table, row, field
        self.message = message
        where = self._where()
        super().__init__(f"{message} [{', '.join(where)}]" if where else message)

    def __reduce__(self):  # pickled / copied with its location (the keyword arguments)
        return _rebuild, (type(self), self.message, dict(self.__dict__))

    def in_file(self, file):
        """This error, naming ``file`` when it names no file yet (``raise err.in_file(path)``)."""
        if self.file is None:
            self.file = file
            where = self._where()
            self.args = (f"{self.message} [{', '.join(where)}]" if where else self.message,)
        return self

    def _where(self) -> list:
        where = []
        if self.file is not None:
            where.append(f"file {self.file!s}")
        if self.table is not None:
            where.append(f"table {self.table!r}")
        if self.row is not None:
            where.append(f"row {self.row!r}")
        if self.field is not None:
            where.append(f"field {self.field!r}")
        return where


def _rebuild(cls, message, state):
    err = cls.__new__(cls, message)
    err.__dict__.update(state)
    where = err._where()
    err.args = (f"{message} [{', '.join(where)}]" if where else message,)
    return err


class CaseError(GridtapeError, ValueError):
    """A case file cannot be read: missing, unreadable, or not of the format it claims.

    ``line`` is the line of a text file the problem is on, when known (also in the message)."""

    def __init__(self, message: str, *, file=None, table=None, row=None, field=None, line=None):
        self.line = line
        super().__init__(message, file=file, table=table, row=row, field=field)

    def _where(self) -> list:
        where = super()._where()
        if self.line is not None:
            where.append(f"line {self.line}")
        return where


class SchemaError(GridtapeError, ValueError):
    """Data do not fit the schema registry: unknown kind or column, wrong type, value out of range."""


class UnsupportedError(SchemaError, NotImplementedError):
    """The data use a pandapower table, column or value gridtape does not model (and that would
    change the power flow); ``table`` / ``field`` name it."""


class OptionError(GridtapeError, ValueError):
    """An unknown option, or a value an option does not take (an option is not a schema).

    ``option`` (also ``field``) names the option."""

    def __init__(self, message: str, *, option=None, file=None, table=None, row=None, field=None):
        super().__init__(message, file=file, table=table, row=row, field=option if field is None else field)

    @property
    def option(self):
        return self.field

    def _where(self) -> list:
        where = [w for w in super()._where() if not w.startswith("field ")]
        if self.field is not None:
            where.append(f"option {self.field!r}")
        return where


class BadReferenceError(GridtapeError, LookupError, ValueError):
    """An element refers to an entity that does not exist (a branch to a missing bus, ...)."""


class UnknownStepError(GridtapeError, KeyError):
    """A step label that is not one step of a study's index (``res.at(step)``).  A ``KeyError``
    (what a pandas index lookup raises) whose ``str()`` is its message, not a quoted repr."""

    def __str__(self):
        return str(self.args[0]) if self.args else ""


class TopologyError(GridtapeError, ValueError):
    """The network cannot be solved as given: no slack, or an inconsistent topology."""


class SolverError(GridtapeError, RuntimeError):
    """The numerical engine failed in a way that is not a plain non-convergence."""


class NotSolvedError(GridtapeError, RuntimeError):
    """Results were asked for before any solve."""


class DependencyError(GridtapeError, ImportError):
    """An optional dependency (pandapower, lightsim2grid, grid2op) is needed for this call."""


class JournalError(GridtapeError, RuntimeError):
    """The journal cannot do what was asked (closed, read-only, or a bad transaction)."""


class JournalLockedError(JournalError):
    """The journal file is held by another writer process; ``file`` is its path."""


class JournalCorruptError(JournalError, ValueError):
    """The journal's hash chain or framing is broken; ``row`` is the first bad seq, ``offset``
    the byte offset in a segment file (when known; also in the message)."""

    def __init__(self, message: str, *, file=None, table=None, row=None, field=None, offset=None):
        self.offset = offset
        super().__init__(message, file=file, table=table, row=row, field=field)

    def _where(self) -> list:
        where = super()._where()
        if self.offset is not None:
            where.append(f"offset {self.offset}")
        return where


class ConflictError(JournalError):
    """A revert, cherry-pick or merge would overwrite changes made on the current line of history
    (see docs/time-travel.md); nothing was changed.  ``conflicts`` lists each one
    (``gridtape.replay.merge.Conflict``: what, kind, id, field, base, ours, theirs, tx)."""

    def __init__(self, message: str, *, conflicts=(), file=None, table=None, row=None, field=None):
        self.conflicts = list(conflicts)
        super().__init__(message, file=file, table=table, row=row, field=field)


class RevertConflictError(ConflictError):
    """A revert meets a later transaction that changed what the reverted one changed."""


class MergeConflictError(ConflictError):
    """A merge or cherry-pick meets a change of the current line to the same cell or element."""


class ReadOnlyError(GridtapeError, PermissionError):
    """A write to a grid that is read-only (a materialized point of history, a read-only journal)."""


class SnapshotCorruptError(GridtapeError, ValueError):
    """A snapshot file is missing or its bytes do not match the manifest; ``file`` names it."""


class SnapshotError(GridtapeError, OSError):
    """A snapshot cannot be written (full filesystem, read-only directory, ...); ``file`` names the
    directory.  Nothing partial is left behind."""


class CheckpointWarning(UserWarning):
    """An automatic checkpoint written in the background failed: the journal records nothing for
    it and ``grid.checkpoint_error`` holds the exception (see docs/time-travel.md)."""


class SnapshotFallbackWarning(UserWarning):
    """A snapshot the journal records cannot be used (a missing or damaged file, a manifest that
    differs from the recorded one): the world is built from an older snapshot, or from the case
    load and the events, instead -- the same world, built more slowly (docs/time-travel.md).
    ``file`` is the snapshot directory, ``snapshot`` its id, ``row`` the seq of its event,
    ``error`` what reading it raised."""

    def __init__(self, message, file=None, snapshot=None, row=None, error=None):
        super().__init__(message)
        self.file, self.snapshot, self.row, self.error = file, snapshot, row, error


class QLimitTieWarning(UserWarning):
    """``enforce_q_lims``: a generator's reactive power sat at one of its limits to within the
    solver tolerance when pandapower's outer loop decided whether to fix it there.  Which side of
    the limit round-off puts it decides the rounds that follow, so pandapower may decide the other
    way and reach another (equally valid) solution.  ``table`` ("gen") and ``rows`` (element ids)
    name the generators."""

    def __init__(self, message, table="gen", rows=()):
        super().__init__(message)
        self.table = table
        self.rows = tuple(rows)


__all__ = [
    "GridtapeError",
    "CaseError",
    "SchemaError",
    "UnsupportedError",
    "OptionError",
    "BadReferenceError",
    "TopologyError",
    "SolverError",
    "NotSolvedError",
    "DependencyError",
    "JournalError",
    "JournalLockedError",
    "JournalCorruptError",
    "ConflictError",
    "RevertConflictError",
    "MergeConflictError",
    "ReadOnlyError",
    "SnapshotCorruptError",
    "SnapshotError",
    "CheckpointWarning",
    "SnapshotFallbackWarning",
    "QLimitTieWarning",
]
