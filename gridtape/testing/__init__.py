"""gridtape.testing: property-based testing of grid edits with hypothesis (docs/testing.md).

Strategies draw change values of the vocabulary (world/changes.py); :func:`run` applies them to a
grid through its public API, :func:`to_code` prints them as gridtape code, :func:`play` runs a
drawn sequence and, when a property fails, prints the shrunk steps as a script and saves them as a
journal that ``gridtape.open`` loads.
"""
from hypothesis import HealthCheck, Phase, settings

from .cases import case_grid, case_path, case_world
from .invariants import (assert_grids_equal, assert_incremental_equals_fresh, assert_replay_equals_live,
                         assert_roundtrip, assert_undo_restores)
from .machine import GridStateMachine
from .drawn_networks import networks
from .report import play, report_failure, save_journal, script
from .runner import REDO, SOLVE, UNDO, EditBlock, Op, Sequence, run, run_in, to_code
from .strategies import edit_sequences, edits, profiles, writes
from .topology import connected

#: every phase but "explain" (it traces each line the test runs: minutes on a power-flow test)
_PHASES = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink]
_SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]


def _register(name, **kw):
    try:
        settings.get_profile(name)
    except Exception:  # noqa: BLE001 - InvalidArgument: not registered yet (a user's own wins)
        settings.register_profile(name, **kw)


#: CI: few examples, no deadline (solves on shared machines vary), reproducible, no explain phase.
#: (hypothesis ships its own "ci" profile, loaded by itself on CI machines; gridtape's is "gridtape-ci")
PROFILES = {
    "gridtape-ci": dict(max_examples=25, deadline=None, derandomize=True, suppress_health_check=_SLOW,
                        print_blob=True, phases=_PHASES),
    #: before a release, or overnight: many examples
    "gridtape-thorough": dict(max_examples=1000, deadline=None, suppress_health_check=_SLOW, print_blob=True,
                              phases=_PHASES),
}
PROFILES["thorough"] = PROFILES["gridtape-thorough"]
for _name, _kw in PROFILES.items():
    _register(_name, **_kw)

__all__ = ["writes", "edits", "edit_sequences", "networks", "profiles", "GridStateMachine", "run", "to_code",
           "run_in", "play", "report_failure", "save_journal", "script", "SOLVE", "UNDO", "REDO", "EditBlock", "Op",
           "Sequence", "assert_grids_equal", "assert_incremental_equals_fresh", "assert_replay_equals_live",
           "assert_undo_restores", "assert_roundtrip", "case_path", "case_world", "case_grid", "connected", "PROFILES"]
