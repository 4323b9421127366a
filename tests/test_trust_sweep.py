"""Issue 15, acceptance 2 (the CI subset): pandapower's bundled networks, with and without
``enforce_q_lims``, each also with random taps and a few lines out, agree with runpp or are
refused by name.  The full sweep is ``python benchmarks/compare_pandapower.py`` (its table is in
docs/model-notes.md)."""
from __future__ import annotations

import pytest

pp = pytest.importorskip("pandapower")
pn = pytest.importorskip("pandapower.networks")

import trust  # noqa: E402

SUBSET = {
    "case14": pn.case14,
    "case118": pn.case118,
    "case1888rte": pn.case1888rte,  # transmission, many gens at their Q limits, sgens with Q limits
    "GBreducednetwork": pn.GBreducednetwork,
    "example_multivoltage": pn.example_multivoltage,  # every element kind, switches
    "cigre_mv_der": lambda: pn.create_cigre_network_mv(with_der="all"),
    "mv_oberrhein": pn.mv_oberrhein,
    "kb_extrem_vorstadtnetz_trafo_1": pn.kb_extrem_vorstadtnetz_trafo_1,
    "simple_mv_open_ring_net": pn.simple_mv_open_ring_net,
}
ACCEPTED = ("agree", "refused", "both diverge")


@pytest.mark.parametrize("perturb", [False, True], ids=["as_built", "taps_lines_out"])
@pytest.mark.parametrize("qlim", [False, True], ids=["plain", "qlim"])
@pytest.mark.parametrize("name", list(SUBSET))
def test_bundled_network_agrees_or_is_refused(name, qlim, perturb):
    net = SUBSET[name]()
    if perturb:
        net = trust.perturbed(net, seed=1)
    status, worst, note = trust.compare_case(net, qlim=qlim)
    assert status in ACCEPTED, f"{name}: {status} {note}"
    if status == "refused":
        assert "[" in note, note  # the error names its table / column / option
