"""The public face: PowerGrid, SolveReport, handles, rebuild levels, v, divergence, errors, CLI."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gridtape import PowerGrid, SolveReport
from gridtape.errors import GridtapeError, NotSolvedError, SchemaError, TopologyError
from gridtape.world import World

CASES = Path(__file__).resolve().parent.parent / "cases"
IEEE118 = CASES / "IEEE118" / "data.zip"
IEEE14 = CASES / "IEEE14" / "data.zip"


def fresh_solution(grid: PowerGrid) -> np.ndarray:
    """Solve a copy of the grid's world from scratch (full rebuild, pandapower's init)."""
    other = PowerGrid(world=grid.world.copy(), tolerance_mva=grid.tolerance_mva)
    rep = other.solve(init="auto")
    assert rep.converged and rep.rebuild == "full"
    return other.v


def test_scenario_a_batch_analysis():
    grid = PowerGrid(str(IEEE118))
    report = grid.solve()
    assert isinstance(report, SolveReport)
    assert report.converged and grid.converged
    assert report.iterations == grid.iterations > 0
    assert report.runtime_ms > 0 and report.rebuild == "full"
    assert list(grid.res_bus.columns) == ["vm_pu", "va_degree", "p_mw", "q_mvar"]
    assert "loading_percent" in grid.res_line.columns
    assert len(grid.res_bus) == 118
    # power balance: generation = load + losses
    gen = -grid.res_bus.p_mw.sum()
    losses = grid.res_line.pl_mw.sum() + grid.res_trafo.pl_mw.sum()
    assert gen == pytest.approx(losses, abs=1e-5)


def test_scenario_b_parameter_loop_is_incremental_and_exact():
    grid = PowerGrid(str(IEEE118), tolerance_mva=1e-10)
    grid.solve()
    load = grid.load(bus=5)
    assert load is not None
    for p in (50.0, 60.0, 70.0):
        load.p_mw = p
        rep = grid.solve()
        assert rep.converged and rep.rebuild == "incremental"
        # chord steps on the previous LU factors: cheap, linear convergence (plain Newton: <= 3)
        assert rep.iterations <= 6
        assert load.p_mw == p
        assert grid.bus(5).vm_pu == pytest.approx(abs(grid.v[5]), abs=1e-12)
        assert np.max(np.abs(grid.v - fresh_solution(grid))) < 1e-9


def test_admittance_path_and_full_path_match_fresh_solve():
    grid = PowerGrid(str(IEEE118), tolerance_mva=1e-10)
    grid.solve()
    line = grid.line(0, 1)
    line.r_ohm_per_km = line.r_ohm_per_km * 1.5
    rep = grid.solve()
    assert rep.rebuild == "admittance" and rep.converged
    assert np.max(np.abs(grid.v - fresh_solution(grid))) < 1e-9
    line.in_service = False
    rep = grid.solve()
    assert rep.rebuild == "full" and rep.converged
    assert np.isclose(grid.res_line.loc[line.id, "p_from_mw"], 0.0)
    assert np.max(np.abs(grid.v - fresh_solution(grid))) < 1e-9
    assert grid.solve().rebuild == "none"


def test_vectorized_writes_take_incremental_path():
    grid = PowerGrid(str(IEEE14), tolerance_mva=1e-10)
    grid.solve()
    ids = grid.world["load"].ids
    grid.world.set_values("load", ids, "p_mw", grid.world["load"].cols["p_mw"] * 1.01)
    rep = grid.solve()
    assert rep.rebuild == "incremental"
    assert np.max(np.abs(grid.v - fresh_solution(grid))) < 1e-9


def test_divergence_gives_nan_not_stale_results():
    grid = PowerGrid(str(IEEE14))
    assert grid.solve().converged
    good = grid.res_bus.copy()
    ids = grid.world["load"].ids
    p0 = grid.world["load"].cols["p_mw"].copy()
    grid.world.set_values("load", ids, "p_mw", p0 * 40)
    rep = grid.solve()
    assert not rep.converged and not grid.converged
    assert rep.iterations == grid.max_iteration
    assert grid.res_bus.vm_pu.isna().all() and grid.res_line.p_from_mw.isna().all()
    assert np.isnan(grid.v).all()
    grid.world.set_values("load", ids, "p_mw", p0)
    rep = grid.solve()
    assert rep.converged
    assert np.allclose(grid.res_bus.vm_pu, good.vm_pu, atol=1e-8)


def test_v_is_in_bus_id_order_and_assignable_as_warm_start():
    grid = PowerGrid(str(IEEE14))
    with pytest.raises(NotSolvedError):
        grid.v  # noqa: B018
    grid.solve()
    v = grid.v
    assert v.shape == (14,)
    assert np.allclose(np.abs(v), grid.res_bus.vm_pu.to_numpy())
    assert np.allclose(np.angle(v, deg=True), grid.res_bus.va_degree.to_numpy())
    # a poor starting point only changes the path, never the answer (set-points are re-pinned)
    grid.v = np.full(14, 0.9 + 0.1j)
    grid.world.set_value("load", int(grid.world["load"].ids[0]), "p_mw", 25.0)
    rep = grid.solve()
    assert rep.converged
    assert np.max(np.abs(grid.v - fresh_solution(grid))) < 1e-7
    with pytest.raises(SchemaError):
        grid.v = np.ones(3)


def test_handles_absent_and_read_only_results():
    grid = PowerGrid(str(IEEE14))
    grid.solve()
    assert grid.bus(999) is None and grid.load(bus=0) is None and grid.line(0, 13) is None
    assert grid.gen(bus=1) is not None
    bus = grid.bus(3)
    with pytest.raises(SchemaError) as err:
        bus.vm_pu = 1.0
    assert err.value.field == "vm_pu"


def test_bad_write_names_field_and_changes_nothing():
    grid = PowerGrid(str(IEEE14))
    grid.solve()
    before = grid.world.copy()
    line = grid.line(0, 1)
    for field, value in (("length_km", -1.0), ("x_ohm_per_km", float("nan")), ("from_bus", 999),
                         ("parallel", 0), ("in_service", "maybe")):
        with pytest.raises(GridtapeError) as err:
            setattr(line, field, value)
        assert err.value.field == field
    assert grid.world.equals(before)
    assert grid.solve().rebuild == "none"


def test_no_slack_is_a_clear_error():
    grid = PowerGrid(str(IEEE14))
    grid.world.set_values("ext_grid", grid.world["ext_grid"].ids, "in_service", False)
    with pytest.raises(TopologyError, match="slack"):
        grid.solve()


def test_empty_grid_and_dc():
    with pytest.raises(TopologyError):
        PowerGrid(world=World()).solve()
    grid = PowerGrid(str(IEEE118))
    rep = grid.solve(algorithm="dc")
    assert rep.converged and rep.algorithm == "dc"
    # rundcpp reports its initial magnitudes: 1 p.u., the set-points at generator buses
    vm = grid.res_bus.vm_pu
    gen_bus = set(grid.world["gen"].cols["bus"].tolist()) | set(grid.world["ext_grid"].cols["bus"].tolist())
    assert np.allclose(vm[~vm.index.isin(gen_bus)].dropna(), 1.0)
    assert (grid.res_line.q_from_mvar == 0).all()
    with pytest.raises(GridtapeError):  # an option value gridtape does not model (OptionError)
        grid.solve(algorithm="gs")
    with pytest.raises(GridtapeError):
        grid.solve(init="warm")


def test_cli_solve(capsys):
    from gridtape.cli import main

    assert main(["solve", str(IEEE14), "--json"]) == 0
    out = capsys.readouterr().out
    assert '"converged": true' in out
    assert main(["solve", str(CASES / "nope.zip")]) == 2
    assert "nope.zip" in capsys.readouterr().err


def test_element_reference_doc_is_generated_from_the_schema():
    import importlib.util

    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("gen_doc", root / "tools" / "gen_elements_doc.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert (root / "docs" / "elements.md").read_text() == mod.render()


def test_results_after_an_edit_before_the_next_solve():
    """Results are never computed on arrays of another shape: elements added or removed since the
    last solve give NotSolvedError (inside the block and after it) until solve(); a rolled-back
    block gives the last solve's results back."""
    from gridtape.errors import NotSolvedError

    grid = PowerGrid(IEEE14)
    grid.solve()
    vm = grid.res_bus.vm_pu.copy()
    with grid.edit() as e:
        b, _ = e.add_bus(110.0)
        with pytest.raises(NotSolvedError):
            grid.res_bus
        e.add_load(b, p_mw=1.0)
    for table in ("res_bus", "res_load", "res_line"):
        with pytest.raises(NotSolvedError):
            getattr(grid, table)
    with pytest.raises(ValueError):
        with grid.edit() as e:
            e.add_load(3, p_mw=2.0)
            raise ValueError("abandon the block")
    grid.solve()
    assert len(grid.res_bus) == 15 and len(grid.res_load) == len(grid.world["load"])
    g2 = PowerGrid(IEEE14)
    g2.solve()
    with pytest.raises(RuntimeError):
        with g2.edit() as e:
            e.add_load(3, p_mw=2.0)
            raise RuntimeError("abandon the block")
    assert np.array_equal(g2.res_bus.vm_pu.to_numpy(), vm.to_numpy())  # the last solve's results


def test_table_view_is_the_world_as_pandapower_shows_it_and_a_copy(tmp_path):
    """grid.table(kind): every column, indexed by element id, equal to the handles' values; changing
    the frame changes nothing in the grid; an unknown kind is refused by name."""
    import gridtape.errors as E
    from gridtape import PowerGrid

    grid = PowerGrid(str(CASES / "IEEE14" / "data.zip"), journal=False)
    t = grid.table("line")
    assert list(t.index) == list(grid.world["line"].ids)
    for eid in t.index[:5]:
        h = grid.element("line", int(eid))
        assert t.loc[eid, "x_ohm_per_km"] == h.x_ohm_per_km and t.loc[eid, "from_bus"] == h.from_bus
    eid = int(t.index[0])
    before = grid.element("line", eid).length_km
    t.loc[eid, "length_km"] = before + 50.0
    t["in_service"] = False
    assert grid.element("line", eid).length_km == before
    assert grid.world["line"].cols["in_service"].all()
    grid.element("line", eid).length_km = before + 1.0  # a write shows in the next table
    assert grid.table("line").loc[eid, "length_km"] == before + 1.0
    with pytest.raises((E.GridtapeError, KeyError)):
        grid.table("no_such_kind")
