"""gridtape: a pandapower-exact power-flow engine in which every change is history."""
__version__ = "0.1.0"

from . import errors  # noqa: E402
from .grid import PowerGrid, SolveReport  # noqa: E402

__all__ = ["PowerGrid", "SolveReport", "errors", "__version__"]
