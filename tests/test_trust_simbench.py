"""Issue 15, real data: SimBench grids (LV, MV, HV) load, with their empty optional cells read as
the column defaults, and agree with runpp."""
from __future__ import annotations

import copy

import pytest

pytest.importorskip("pandapower")
sb = pytest.importorskip("simbench")

import trust  # noqa: E402

CODES = ["1-LV-rural1--0-sw", "1-MV-rural--0-sw", "1-HV-mixed--0-sw"]


@pytest.fixture(scope="module", params=CODES)
def simbench_net(request):
    return sb.get_simbench_net(request.param)


@pytest.mark.parametrize("via", ["net", "json"])
def test_simbench_grid_matches_runpp(simbench_net, via, tmp_path):
    net = copy.deepcopy(simbench_net)
    for k in [k for k in net.keys() if isinstance(k, str) and k.startswith("res_")]:
        net[k] = net[k].iloc[0:0]
    trust.solve_and_compare(net, via, tmp_path)
