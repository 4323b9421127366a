"""Issue 15, "the rule, enforced", for the readers: a pandapower column, table or net option that
changes runpp's answer and that gridtape does not model is refused with UnsupportedError naming
the table, row and column, when its value differs from the neutral one; neutral values load;
tables that never change a power flow (measurement, poly_cost, ...) still load.  Where a column
is a plain number, the test also shows that pandapower's answer really changes with it."""
from __future__ import annotations

import json
import logging
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

from gridtape.errors import SchemaError, UnsupportedError
from gridtape.world.io_csvzip import read_csv_zip
from gridtape.world.io_json import read_pandapower_json
from gridtape.world.io_pandapower import from_pandapower
from gridtape.world.pp_checks import UNMODELLED

pp = pytest.importorskip("pandapower")
pn = pytest.importorskip("pandapower.networks")
logging.getLogger("pandapower").setLevel(logging.ERROR)
warnings.filterwarnings("ignore")

CASES = Path(__file__).resolve().parent.parent / "cases"


def _net():
    net = pn.example_multivoltage()
    net.trafo3w["pfe_kw"], net.trafo3w["i0_percent"] = 30.0, 0.3  # iron losses, so that loss_side matters
    return net


def _set(net, table, values: dict, row=0):
    idx = net[table].index[row]
    for c, v in values.items():
        if c not in net[table].columns:
            net[table][c] = None if isinstance(v, str) or v is None else np.nan
            if isinstance(v, (bool, np.bool_)):
                net[table][c] = False
        if isinstance(v, str) or v is None:
            net[table][c] = net[table][c].astype(object)
        net[table].loc[idx, c] = v
    return int(idx)


# (table, {column: active value}, {column: neutral value}, field named, pandapower's answer changes).
# The second tap changer, the leakage split, trafo3w loss_side, tap and step dependency tables,
# capability curves and user_pf_options are modelled since issue 15 (tests/test_trust_*.py).
CASES_ALWAYS = [
    ("trafo", {"tap_dependent_impedance": True}, {"tap_dependent_impedance": False}, "tap_dependent_impedance",
     False),
]


@pytest.mark.parametrize("table,active,neutral,field,changes", CASES_ALWAYS,
                         ids=[f"{c[0]}.{c[3]}" for c in CASES_ALWAYS])
def test_unmodelled_column_is_refused_by_name(tmp_path, table, active, neutral, field, changes):
    net = _net()
    eid = _set(net, table, active, row=len(net[table]) - 1)
    with pytest.raises(UnsupportedError) as e:
        from_pandapower(net)
    assert (e.value.table, e.value.row, e.value.field) == (table, eid, field)
    assert isinstance(e.value, SchemaError) and isinstance(e.value, NotImplementedError)
    path = tmp_path / "n.json"
    pp.to_json(net, str(path))
    with pytest.raises(UnsupportedError) as e:
        read_pandapower_json(path)
    assert (e.value.file, e.value.table, e.value.row, e.value.field) == (str(path), table, eid, field)

    ok = _net()
    _set(ok, table, neutral, row=len(ok[table]) - 1)
    assert from_pandapower(ok).counts() == from_pandapower(_net()).counts()  # the neutral value loads
    if changes:  # and the refused value is one that changes pandapower's answer
        pp.runpp(ok)
        pp.runpp(net)
        dvm = np.nanmax(np.abs(net.res_bus.vm_pu.values - ok.res_bus.vm_pu.values))
        dva = np.nanmax(np.abs(net.res_bus.va_degree.values - ok.res_bus.va_degree.values))
        assert dvm > 1e-6 or dva > 1e-4, (dvm, dva)  # beyond the parity tolerances


def test_second_tap_changer_in_a_csv_zip_loads(tmp_path):
    """tap2_* columns (modelled since issue 15) load from a CSV zip as pass-through columns."""
    with zipfile.ZipFile(CASES / "IEEE14" / "data.zip") as z:
        files = {n: z.read(n).decode() for n in z.namelist()}
    lines = files["trafo.csv"].strip().split("\n")
    lines[0] += ",tap2_changer_type,tap2_side,tap2_neutral,tap2_pos,tap2_step_percent"
    lines[1:] = [ln + ',"Ratio","hv",0,-3,1.25' for ln in lines[1:]]
    files["trafo.csv"] = "\n".join(lines) + "\n"
    p = tmp_path / "tap2.zip"
    with zipfile.ZipFile(p, "w") as z:
        for n, t in files.items():
            z.writestr(n, t)
    assert read_csv_zip(p)["trafo"].extra["tap2_pos"][0] == -3


def test_user_pf_options_are_kept_with_the_world(tmp_path):
    net = _net()
    pp.set_user_pf_options(net, init="dc", trafo_model="pi")
    assert from_pandapower(net).pf_options == {"init": "dc", "trafo_model": "pi"}
    path = tmp_path / "o.json"
    pp.to_json(net, str(path))
    assert read_pandapower_json(path).pf_options == {"init": "dc", "trafo_model": "pi"}


def test_unsupported_element_tables_raise_unsupported_error():
    net = pn.example_simple()
    pp.create_dcline(net, 1, 3, p_mw=1.0, loss_percent=1.0, loss_mw=0.1, vm_from_pu=1.0, vm_to_pu=1.0)
    with pytest.raises(UnsupportedError) as e:
        from_pandapower(net)
    assert e.value.table == "dcline"


def test_tables_that_never_change_a_power_flow_still_load(tmp_path):
    net = _net()
    b = int(net.bus.index[3])
    pp.create_measurement(net, "v", "bus", 1.01, 0.01, element=b)
    pp.create_poly_cost(net, int(net.ext_grid.index[0]), "ext_grid", cp1_eur_per_mw=10.0)
    path = tmp_path / "m.json"
    pp.to_json(net, str(path))
    assert read_pandapower_json(path).counts() == from_pandapower(_net()).counts()
    assert from_pandapower(net).counts() == from_pandapower(_net()).counts()


def test_registry_names_real_pandapower_columns():
    """Every registry column is one pandapower 3 reads in its power flow (guards against typos)."""
    import inspect

    import pandapower.build_branch as bb
    import pandapower.build_bus as bbus
    import pandapower.build_gen as bg

    src = inspect.getsource(bb) + inspect.getsource(bbus) + inspect.getsource(bg)
    for table, col, *_ in UNMODELLED:
        probe = col.replace("tap2_", "tap{t}_") if col.startswith("tap2_") else col
        assert probe in src or col in src, (table, col)
    assert json.dumps([c[1] for c in UNMODELLED])
