"""What a failing property leaves behind: the shrunk steps as runnable gridtape code (printed with
hypothesis's ``note``, so it shows under "Falsifying example") and as a small journal file that
``gridtape.open`` loads, bisects and explains."""
from __future__ import annotations

import hashlib
import os

from .runner import SOLVE, to_code

#: where failure journals go: $GRIDTAPE_FAILURES, else .gridtape-failures/ in the working directory
def failure_dir() -> str:
    return os.environ.get("GRIDTAPE_FAILURES") or os.path.join(os.getcwd(), ".gridtape-failures")


def is_final() -> bool:
    """Whether hypothesis is running the final (shrunk) example, or no hypothesis test runs at all."""
    try:
        from hypothesis.control import current_build_context

        return bool(current_build_context().is_final)
    except Exception:  # noqa: BLE001 - outside a hypothesis test: every run is "final"
        return True


def script(steps, *, case_path=None, journal=None) -> str:
    """A Python script that rebuilds the starting grid and runs ``steps`` on it."""
    head = ["import gridtape as gt", ""]
    if case_path is not None:
        head.append(f"grid = gt.PowerGrid({case_path!r})")
    elif journal is not None:
        head.append(f"grid = gt.PowerGrid(world=gt.open({journal!r}).world_at(0))  # the starting world")
    else:
        head.append("grid = ...  # the starting grid")
    return "\n".join(head + [to_code(steps)])


def save_journal(world, steps, path=None, **grid_kwargs) -> str:
    """Replay ``steps`` from ``world`` into a new journal file (the step that raised ends it) and
    return its path.  ``gridtape.open(path)`` then loads it; each step is one point of history."""
    from gridtape import PowerGrid

    from .runner import run

    if path is None:
        d = failure_dir()
        os.makedirs(d, exist_ok=True)
        from gridtape.replay.archive import case_zip_bytes

        digest = hashlib.sha1(to_code(steps).encode() + case_zip_bytes(world)).hexdigest()[:10]
        path = os.path.join(d, f"failure-{digest}.duckdb")
    if os.path.exists(path):
        os.remove(path)
    g = PowerGrid(world=world.copy(), journal=path, checkpoint_background=False, **grid_kwargs)
    try:
        for s in steps:
            try:
                run(g, s)
            except Exception:  # noqa: BLE001 - the journal ends where the steps stop working
                break
    finally:
        g.close()
    return path


def report_failure(world, steps, *, case_path=None, save=True) -> str:
    """Print (``hypothesis.note``) the steps as a script and save them as a journal; returns the
    script.  Called by :func:`play` and the state machine when a property fails."""
    path = None
    if save:
        try:
            path = save_journal(world, steps)
        except Exception as e:  # noqa: BLE001 - the report must not hide the property's failure
            path = None
            _note(f"(could not write the failure journal: {e!r})")
    text = script(steps, case_path=case_path, journal=path)
    _note("gridtape steps of the failing example:\n" + text)
    if path:
        _note(f"journal of the failing example: {path}  (gridtape.open({path!r}) to bisect or replay it)")
    return text


def _note(text):
    try:
        from hypothesis import note

        note(text)
    except Exception:  # noqa: BLE001 - outside hypothesis: print it
        print(text)


def play(grid, steps, *, after_each=None, at_end=None, save=True):
    """Run ``steps`` on ``grid`` (:func:`gridtape.testing.run` each), calling ``after_each(grid)``
    after each step and ``at_end(grid)`` after the last.  If anything raises while hypothesis runs
    its final (shrunk) example, the steps are printed as a script and saved as a journal
    (:func:`report_failure`) before the error goes on."""
    from .runner import run

    start = grid.world.copy()
    solved = grid.last_report is not None  # the steps start from a solved grid: the script solves first
    try:
        for s in steps:
            run(grid, s)
            if after_each is not None:
                after_each(grid)
        if at_end is not None:
            at_end(grid)
    except BaseException:
        if is_final():
            report_failure(start, ([SOLVE] if solved else []) + list(steps), case_path=_pristine_path(grid, start),
                           save=save)
        raise


def _pristine_path(grid, world):
    """The grid's case file when loading it gives ``world`` (the steps start from the case)."""
    path = getattr(grid, "case_path", None)
    if not path or not os.path.exists(path):
        return None
    try:
        from gridtape.world.io import load_case

        return path if load_case(path).equals(world) else None
    except Exception:  # noqa: BLE001
        return None
