"""gridtape: a pandapower-exact power-flow engine in which every change is history."""
__version__ = "0.4.0"

from . import errors  # noqa: E402
from .grid import PowerGrid, SolveReport  # noqa: E402


def open(path, read_only: bool = True, snapshots=None):  # noqa: A001 - gridtape.open, like io.open
    """Open a study journal: a :class:`gridtape.study.Study` (``at``, ``bisect``, ``blame``,
    ``branch``).  ``read_only=True`` (default) works while no writer holds the file."""
    from gridtape.journal import Journal
    from gridtape.study import Study

    return Study(Journal(str(path), read_only=read_only), snapshots=snapshots)


def diff(a, b, results: bool = False):
    """What turns ``a`` into ``b`` (two PowerGrids or Worlds): a DataFrame with change (add, remove,
    set), kind, id, field, old, new.  ``results=True``: the result deltas of two solved grids."""
    from gridtape.errors import SchemaError
    from gridtape.replay.diff import diff_worlds, result_diff
    from gridtape.world import World

    for name, x in (("a", a), ("b", b)):
        if not isinstance(x, PowerGrid if results else (PowerGrid, World)):
            raise SchemaError(f"diff() compares two PowerGrids{'' if results else ' or Worlds'}: {name} is "
                              f"{type(x).__name__} {x!r:.60}", field=name)
    if results:
        return result_diff(a.post_process(), b.post_process())
    wa = a.world if isinstance(a, PowerGrid) else a
    wb = b.world if isinstance(b, PowerGrid) else b
    return diff_worlds(wa, wb)


__all__ = ["PowerGrid", "SolveReport", "errors", "open", "diff", "__version__"]

from . import notebook as _notebook  # noqa: E402 - readable text and notebook forms (gridtape/notebook.py)

_notebook.install()
