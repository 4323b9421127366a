"""Make ``gridtape`` importable from the source tree when it is not installed: the package is
gridtape/, its subpackages (world, solver_cy) live at the repository root."""
import importlib.util
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
try:
    import gridtape.world  # noqa: F401
except ImportError:
    for _k in [k for k in sys.modules if k == "gridtape" or k.startswith("gridtape.")]:
        del sys.modules[_k]
    _spec = importlib.util.spec_from_file_location("gridtape", os.path.join(ROOT, "gridtape", "__init__.py"),
                                                   submodule_search_locations=[os.path.join(ROOT, "gridtape"), ROOT])
    _mod = importlib.util.module_from_spec(_spec)
    sys.modules["gridtape"] = _mod
    _spec.loader.exec_module(_mod)

# Subprocesses the tests start (`python -m gridtape.cli ...`, tools/*.py, a nested pytest) must
# import the installed gridtape, as a user's would, not the source folder gridtape/ that a
# working directory at the repository root would put first on sys.path (its subpackages
# world/, solver_cy/, ... are mapped in only by the install).  Python 3.11's safe-path mode.
os.environ.setdefault("PYTHONSAFEPATH", "1")


@pytest.fixture
def no_matplotlib(monkeypatch):
    """Imports of matplotlib fail, as on a machine without the ``plot`` extra."""
    import builtins

    real = builtins.__import__

    def no_mpl(name, *a, **kw):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError(f"No module named {name!r}")
        return real(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_mpl)
