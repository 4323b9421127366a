"""grid.timeseries: every output equals a fresh solve of that step's world (chained and
independent, with steps that diverge in the middle), a few steps agree with pandapower, and bad
profiles are refused before anything runs."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

import gridtape as gt
from gridtape.errors import BadReferenceError, SchemaError
from gridtape.studies.profiles import jitter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOL = 1e-11  # solver tolerance of the compared runs: outputs meet 1e-9 p.u. with room to spare


def case(name, **kw):
    p = os.path.join(ROOT, "cases", name)
    return gt.PowerGrid(p, journal=False, tolerance_mva=TOL, max_iteration=30, **kw)


def load_profiles(world, n, spread=0.05, seed=0, diverge=()):
    """Load p/q and gen p moved by +-spread; steps in ``diverge`` scale every load tenfold."""
    out = jitter(world, n, spread, seed, index=pd.date_range("2026-03-01", periods=n, freq="15min"))
    for k in diverge:
        for f in ("p_mw", "q_mvar"):
            out[("load", f)].iloc[k] *= 10.0
    return out


def per_unit(kind, col, values, sn):
    if col == "va_degree":
        return np.deg2rad(values)
    if col == "loading_percent":
        return values / 100.0
    if col.endswith("_mw") or col.endswith("_mvar"):
        return values / sn
    return values


def assert_equals_fresh(grid, res, steps):
    """Each step's outputs against a fresh PowerGrid of that step's world, to 1e-9 p.u."""
    sn = grid.world.sn_mva
    for k in steps:
        step = res.index[k]
        fresh = gt.PowerGrid(world=res.world_at(step), journal=False, tolerance_mva=TOL, max_iteration=30)
        rep = fresh.solve()
        assert bool(res.converged.iloc[k]) == rep.converged, f"step {k}"
        for kind, col in res.outputs:
            got = res.result(kind, col).iloc[k].to_numpy()
            if not rep.converged:
                assert np.isnan(got).all(), f"step {k} {kind}.{col}: a diverged step shows numbers"
                continue
            want = fresh.result(kind)[col].to_numpy()
            a, b = per_unit(kind, col, got, sn), per_unit(kind, col, want, sn)
            assert np.array_equal(np.isnan(a), np.isnan(b)), f"step {k} {kind}.{col}"
            ok = ~np.isnan(a)
            assert np.abs(a[ok] - b[ok]).max(initial=0.0) < 1e-9, f"step {k} {kind}.{col}"


@pytest.mark.parametrize("name", ["IEEE14", "IEEE57", "IEEE118"])
@pytest.mark.parametrize("independent", [False, True])
def test_outputs_equal_fresh_solves_with_divergence(name, independent):
    g = case(name)
    n = 24
    prof = load_profiles(g.world, n, diverge=(9, 10))
    res = g.timeseries(prof, independent=independent, chunk_size=7)
    assert len(res) == n and list(res.index) == list(prof[("load", "p_mw")].index)
    assert not res.converged.iloc[9] and not res.converged.iloc[10]
    assert res.converged.drop(res.index[[9, 10]]).all()
    assert res.iterations.iloc[9] > 0 and np.isfinite(res.mismatch.iloc[9]) or np.isnan(res.mismatch.iloc[9])
    assert (res.mismatch[res.converged] < TOL).all()
    assert_equals_fresh(g, res, range(n))
    # the grid itself is untouched: its world is the base, no results were changed
    assert g.world.equals(case(name).world)


def test_admittance_columns_and_sgens():
    g = gt.PowerGrid(os.path.join(ROOT, "cases", "json", "example_multivoltage.json"), journal=False,
                     tolerance_mva=TOL, max_iteration=30)
    w = g.world
    n = 12
    prof = load_profiles(w, n, seed=3)
    tr = w["trafo"]
    taps = np.where(np.isnan(tr.cols["tap_pos"]), 0.0, tr.cols["tap_pos"])
    prof[("trafo", "tap_pos")] = pd.DataFrame(np.tile(taps, (n, 1)) + np.arange(n)[:, None] % 3 - 1,
                                              index=prof[("load", "p_mw")].index, columns=tr.ids)
    outs = [("bus", "vm_pu"), ("line", "loading_percent"), ("trafo", "loading_percent"), ("sgen", "q_mvar"),
            ("ext_grid", "p_mw"), ("trafo3w", "loading_percent")]
    for independent in (False, True):
        res = g.timeseries(prof, outs, independent=independent)
        assert res.converged.all()
        assert_equals_fresh(g, res, range(n))


def test_chained_chunking_on_threads_equals_one_run():
    from concurrent.futures import ThreadPoolExecutor

    g = case("IEEE118")
    prof = load_profiles(g.world, 40, diverge=(20,))
    one = g.timeseries(prof)
    with ThreadPoolExecutor(2) as ex:
        split = g.timeseries(prof, executor=ex, chunk_size=9, overlap=3)
    assert (one.converged == split.converged).all()
    for o in one.outputs:
        a = per_unit(*o, one[o].to_numpy(), 100.0)
        b = per_unit(*o, split[o].to_numpy(), 100.0)
        assert np.allclose(a, b, atol=1e-9, rtol=0, equal_nan=True), o


def test_independent_is_bit_identical_whatever_the_chunking():
    from concurrent.futures import ThreadPoolExecutor

    g = gt.PowerGrid(os.path.join(ROOT, "cases", "IEEE118"), journal=False)
    prof = load_profiles(g.world, 60, spread=0.2, diverge=(30,))
    one = g.timeseries(prof, independent=True)
    with ThreadPoolExecutor(2) as ex:
        a = g.timeseries(prof, independent=True, executor=ex, chunk_size=7)
        b = g.timeseries(prof, independent=True, executor=ex, chunk_size=25)
    for o in one.outputs:
        for other in (a, b):
            assert np.array_equal(one[o].to_numpy(), other[o].to_numpy(), equal_nan=True), o
    assert (one.iterations == a.iterations).all()


def test_a_few_steps_agree_with_pandapower():
    pp = pytest.importorskip("pandapower")
    g = case("IEEE30")
    prof = load_profiles(g.world, 6, seed=5)
    res = g.timeseries(prof)
    for k in (0, 3, 5):
        net = g.to_pandapower()
        for (kind, f), fr in prof.items():
            net[kind].loc[fr.columns, f] = fr.iloc[k].to_numpy()
        pp.runpp(net, tolerance_mva=1e-10, init="auto")
        assert np.abs(net.res_bus.vm_pu.to_numpy() - res["bus", "vm_pu"].iloc[k].to_numpy()).max() < 1e-8
        assert np.abs(net.res_line.loading_percent.to_numpy()
                      - res["line", "loading_percent"].iloc[k].to_numpy()).max() < 1e-6
        assert np.abs(net.res_ext_grid.p_mw.to_numpy() - res["ext_grid", "p_mw"].iloc[k].to_numpy()).max() < 1e-6


def test_profile_forms_dfdata_wide_and_bytes():
    g = case("IEEE14")
    prof = load_profiles(g.world, 5)

    class DFData:  # pandapower's data source holds its frame as .df (columns: profile names)
        def __init__(self, df):
            self.df = df

    dfd = {k: DFData(v.rename(columns=str)) for k, v in prof.items()}
    a = g.timeseries(prof)
    b = g.timeseries(dfd)
    from gridtape.studies import read_profiles

    p = read_profiles(prof, g.world)
    c = g.timeseries(p.to_parquet_bytes())
    d = g.timeseries(p.to_arrow().to_pandas())
    for other in (b, c, d):
        assert np.array_equal(a["bus", "vm_pu"].to_numpy(), other["bus", "vm_pu"].to_numpy())
    assert list(c.index) == list(a.index)


def test_bad_profiles_are_refused_before_anything_runs():
    g = case("IEEE14")
    prof = load_profiles(g.world, 4)
    with pytest.raises(SchemaError, match="in_service"):
        g.timeseries({("load", "in_service"): pd.DataFrame([[True]], columns=[0])})
    with pytest.raises(SchemaError, match="no column"):
        g.timeseries({("load", "p_kw"): prof[("load", "p_mw")]})
    with pytest.raises(BadReferenceError) as e:
        g.timeseries({("load", "p_mw"): prof[("load", "p_mw")].rename(columns={0: 999})})
    assert e.value.row == 999
    bad = prof[("load", "q_mvar")].copy()
    bad.iloc[2, 1] = np.nan
    with pytest.raises(SchemaError) as e:
        g.timeseries({("load", "q_mvar"): bad})
    assert e.value.table == "load" and e.value.field == "q_mvar" and "step" in str(e.value)
    other = prof[("gen", "p_mw")].iloc[:3]
    with pytest.raises(SchemaError, match="step index"):
        g.timeseries({("load", "p_mw"): prof[("load", "p_mw")], ("gen", "p_mw"): other})
    with pytest.raises(SchemaError, match="res_bus.vm"):
        g.timeseries(prof, ["res_bus.vm"])


def test_result_views():
    g = case("IEEE118")
    prof = load_profiles(g.world, 10, diverge=(4,))
    res = g.timeseries(prof)
    v = res.violations(vm=(0.95, 1.05), loading=50)
    assert list(v.columns) == ["step", "kind", "id", "quantity", "value", "limit"]
    vm = res["bus", "vm_pu"]
    n_low = int((vm < 0.95).to_numpy().sum() + (vm > 1.05).to_numpy().sum())
    assert ((v.kind == "bus") & (v.quantity == "vm_pu")).sum() == n_low
    assert (v[v.quantity == "loading_percent"].value > 50).all()
    assert not (v.step == res.index[4]).any()  # a diverged step has no values, so no violations
    grid_k = res.at(res.index[6])
    assert grid_k.converged and grid_k.journal is None
    assert np.allclose(grid_k.res_bus.vm_pu.to_numpy(), vm.iloc[6].to_numpy(), atol=1e-9)
    d = gt.diff(g, grid_k)
    assert set(d.kind) <= {"load", "gen"} and len(d)
    tb = res.to_arrow()
    assert tb.num_rows == 10 and "res_bus.vm_pu/0" in tb.column_names
    df = res.to_pandas()
    assert df[("res_bus.vm_pu", 0)].equals(vm[0].rename(("res_bus.vm_pu", 0)))


@pytest.mark.parametrize("kw, name", [
    ({"vm": (1.05, 0.95)}, "vm"), ({"vm": (0.95, 0.95)}, "vm"), ({"vm": "x"}, "vm"), ({"vm": (0.9,)}, "vm"),
    ({"vm": (0.9, float("nan"))}, "vm"), ({"vm": (0.9, 1.1, 1.2)}, "vm"), ({"vm": ("0.9", 1.1)}, "vm"),
    ({"loading": -5}, "loading"), ({"loading": 0}, "loading"), ({"loading": float("nan")}, "loading"),
    ({"loading": float("inf")}, "loading"), ({"loading": "100"}, "loading"), ({"loading": True}, "loading"),
])
def test_violations_refuses_nonsense_limits(kw, name):
    g = case("IEEE14")
    res = g.timeseries(load_profiles(g.world, 3))
    with pytest.raises(SchemaError) as e:
        res.violations(**kw)
    assert e.value.field == name and name in str(e.value)
    assert len(res.violations(vm=np.array([0.99, 1.01]), loading=np.float64(1.0)))  # numbers of any kind


def test_progress_bar_on_request(capsys):
    pytest.importorskip("tqdm")
    g = case("IEEE14")
    g.timeseries(load_profiles(g.world, 20), progress=True)
    err = capsys.readouterr().err
    assert "20/20" in err
    g.timeseries(load_profiles(g.world, 5), progress=False)
    assert capsys.readouterr().err == ""


def test_simbench_profiles_as_simbench_gives_them():
    sb = pytest.importorskip("simbench")
    pp = pytest.importorskip("pandapower")
    net = sb.get_simbench_net("1-LV-rural1--0-sw")
    absolute = sb.get_absolute_values(net, profiles_instead_of_study_cases=True)  # empty frames included
    prof = {k: v.iloc[:48] for k, v in absolute.items()}
    g = gt.PowerGrid.from_pandapower(net, journal=False, tolerance_mva=TOL)
    res = g.timeseries(prof, independent=True)
    assert res.converged.all() and len(res) == 48
    assert_equals_fresh(g, res, (0, 17, 47))
    for k in (5, 30):
        for (kind, f), fr in prof.items():
            if fr.shape[1]:
                net[kind].loc[fr.columns, f] = fr.iloc[k].to_numpy()
        pp.runpp(net, tolerance_mva=1e-10, numba=False)
        got = res["bus", "vm_pu"].iloc[k].reindex(net.res_bus.index).to_numpy()
        assert np.abs(net.res_bus.vm_pu.to_numpy() - got).max() < 1e-8
