"""Progress bars for long work and the ``gridtape`` logger.

:func:`progress` wraps an iterable in a tqdm bar when tqdm is installed and stderr is a terminal,
and returns it unchanged otherwise (pipes, CI, notebooks without a terminal stay silent);
``GRIDTAPE_PROGRESS=0`` turns bars off, ``=1`` forces them on.  :data:`logger` is the standard
``logging.getLogger("gridtape")`` (with a NullHandler: silent until the application configures
logging); modules log to ``logging.getLogger("gridtape.<module>")``, its children.
"""
from __future__ import annotations

import logging
import os
import sys

logger = logging.getLogger("gridtape")
logger.addHandler(logging.NullHandler())


def enabled() -> bool:
    flag = os.environ.get("GRIDTAPE_PROGRESS", "").strip()
    if flag in ("0", "1"):
        return flag == "1"
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


class _Silent:
    """What :func:`bar` returns when no bar is shown: the same calls, doing nothing."""

    def update(self, n=1):
        pass

    def set_postfix_str(self, s):
        pass

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def bar(total=None, desc=None):
    """A manual progress bar (``update()``, ``close()``, a context manager), or a silent stand-in."""
    if enabled():
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return _Silent()
        return tqdm(total=total, desc=desc, leave=False, file=sys.stderr)
    return _Silent()


def progress(iterable, total=None, desc=None):
    """``iterable`` with a progress bar on a terminal (see the module docstring)."""
    if not enabled():
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return iterable
    return tqdm(iterable, total=total, desc=desc, leave=False, file=sys.stderr)
