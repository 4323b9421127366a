"""The gridtape pytest plugin (entry point ``pytest11``: loaded whenever gridtape is installed).

Fixtures
--------
``gt_case``
    a factory: ``gt_case("IEEE14", journal=False, **kw)`` gives a PowerGrid of a bundled case
    (each call a new grid; the case file is read once per session).  Session-scoped, so it works
    inside ``@given`` tests: call it in the test body for a fresh grid per example.
``gt_seed``
    the ``--gridtape-seed`` value (None when not given).
``gt_rng``
    a ``numpy.random.Generator`` seeded from ``--gridtape-seed`` (or a fresh seed, shown in the
    report of a failing test) for tests that draw their own numbers.

Options
-------
``--gridtape-seed=N``
    seeds hypothesis (as ``--hypothesis-seed`` does) and ``gt_rng``: a run can be repeated.
The hypothesis settings profiles ``gridtape-ci`` and ``thorough`` (``gridtape-thorough``) of
gridtape.testing are chosen with hypothesis's own ``--hypothesis-profile=gridtape-ci``.
"""
from __future__ import annotations

import pytest


def pytest_addoption(parser):
    group = parser.getgroup("gridtape")
    group.addoption("--gridtape-seed", action="store", default=None, type=int,
                    help="seed hypothesis and the gt_rng fixture (repeat a run exactly)")


def pytest_configure(config):
    try:
        import gridtape.testing  # noqa: F401 - registers the settings profiles
    except ImportError:  # hypothesis not installed: the fixtures still work, the profiles do not exist
        pass
    seed = config.getoption("--gridtape-seed", default=None)
    if seed is not None:
        from hypothesis import core

        core.global_force_seed = int(seed)


def pytest_report_header(config):
    seed = config.getoption("--gridtape-seed", default=None)
    return f"gridtape: --gridtape-seed={seed}" if seed is not None else None


@pytest.fixture
def gt_seed(request):
    return request.config.getoption("--gridtape-seed", default=None)


@pytest.fixture
def gt_rng(request, gt_seed):
    import numpy as np

    seed = gt_seed if gt_seed is not None else int(np.random.SeedSequence().entropy % 2**32)
    request.node.user_properties.append(("gt_rng seed", seed))
    return np.random.default_rng(seed)


@pytest.fixture(scope="session")
def gt_case():
    import weakref

    from .cases import case_grid

    made = []

    def make(name="IEEE14", **kwargs):
        kwargs.setdefault("journal", False)
        g = case_grid(name, **kwargs)
        made.append(weakref.ref(g))
        return g

    yield make
    for r in made:  # grids still alive at the end of the session: close their journals
        g = r()
        if g is not None:
            try:
                g.close()
            except Exception:  # noqa: BLE001 - a test may have closed it
                pass
