"""The bundled cases (cases/<NAME>/data.zip in the source tree), found from the package."""
from __future__ import annotations

import os

_WORLDS = {}


def cases_dir() -> str:
    """$GRIDTAPE_CASES, else ./cases, else the cases/ folder beside the gridtape source tree."""
    env = os.environ.get("GRIDTAPE_CASES")
    if env:
        return env
    if os.path.isdir("cases"):
        return os.path.abspath("cases")
    import gridtape

    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(gridtape.__file__))), "cases")


def case_path(name: str) -> str:
    """The file of bundled case ``name`` ("IEEE14", "IEEE118", "PEGASE1354", ...); a path to a
    case file or directory is returned as it is."""
    if os.path.exists(name):
        return name
    path = os.path.join(cases_dir(), name, "data.zip")
    if not os.path.exists(path):
        from gridtape.errors import CaseError

        top = cases_dir()
        known = sorted(d for d in os.listdir(top) if os.path.isdir(os.path.join(top, d))) if os.path.isdir(top) else []
        raise CaseError(f"no bundled case {name!r} (known: {', '.join(known)})", file=path)
    return path


def case_world(name: str):
    """The world of bundled case ``name``, loaded once per process; callers get a copy."""
    path = case_path(name)
    if path not in _WORLDS:
        from gridtape.world.io import load_case

        _WORLDS[path] = load_case(path)
    return _WORLDS[path].copy()


def case_grid(name: str, **kwargs):
    """A PowerGrid of bundled case ``name`` (its world copied from a per-process cache); keyword
    arguments go to ``PowerGrid`` (``journal=False`` for none)."""
    from gridtape import PowerGrid

    g = PowerGrid(world=case_world(name), **kwargs)
    g.case_path = case_path(name)
    return g
