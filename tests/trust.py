"""Shared helpers of the trust tests (issue 15): solve a pandapower net with runpp and with
gridtape, and compare every result table both have.

The rule the tests enforce: gridtape reproduces ``pandapower.runpp`` (|dvm| <= 1e-6 p.u.,
|dva| <= 1e-4 degree, P/Q <= 1e-3 MW/Mvar on every res_* table both have) or refuses the network
or option with a gridtape error that names the table, column or option it does not model.
"""
from __future__ import annotations

import copy
import logging
import warnings

import numpy as np

import gridtape.errors as E
from gridtape import PowerGrid

logging.getLogger("pandapower").setLevel(logging.ERROR)

TOL_MVA = 1e-9
#: result tables compared when both sides have them
RES_KINDS = ("bus", "line", "trafo", "trafo3w", "gen", "sgen", "ext_grid", "load", "shunt", "ward", "xward",
             "impedance", "storage", "switch")


def limit(col: str) -> float:
    """The tolerance of one result column."""
    if col.startswith("vm_"):
        return 1e-6
    if col.startswith("va_"):
        return 1e-4
    if col.startswith("i_"):
        return 1e-5  # kA
    if col.startswith("loading"):
        return 1e-3  # percent
    return 1e-3  # MW, Mvar


def runpp(net, **opts):
    """``pandapower.runpp`` with the reference settings (pure pypower Newton, tight tolerance)."""
    import pandapower as pp

    kw = dict(lightsim2grid=False, numba=False, tolerance_mva=TOL_MVA)
    kw.update(opts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pp.runpp(net, **kw)
    return net


def rundcpp(net, **opts):
    import pandapower as pp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pp.rundcpp(net, **opts)
    return net


def grid_of(net, via="net", tmp_path=None, **kwargs) -> PowerGrid:
    """A gridtape grid of ``net``: from the net itself (``via="net"``) or through a pandapower
    JSON file written by ``pandapower.to_json`` (``via="json"``)."""
    kwargs.setdefault("journal", False)
    kwargs.setdefault("tolerance_mva", TOL_MVA)
    if via == "net":
        return PowerGrid.from_pandapower(net, **kwargs)
    import pandapower as pp

    path = tmp_path / "net.json"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pp.to_json(net, str(path))
    return PowerGrid(str(path), **kwargs)


def deltas(grid, net, kinds=RES_KINDS, missing_ok=()) -> dict:
    """``{(table, column): worst |difference|}`` over every result table and column both have.

    Raises AssertionError when the row sets or the NaN patterns differ, or when gridtape lacks a
    result table pandapower filled (``missing_ok`` lists tables allowed to be missing)."""
    out = {}
    for kind in kinds:
        theirs = net.get("res_" + kind)
        if theirs is None or kind not in net or len(net[kind]) == 0:
            continue
        try:
            ours = grid.result(kind)
        except KeyError:
            assert kind in missing_ok, f"gridtape has no res_{kind} (pandapower filled {len(theirs)} rows)"
            continue
        assert sorted(ours.index) == sorted(theirs.index), f"res_{kind}: rows differ"
        for col in ours.columns:
            if col not in theirs.columns:
                continue
            a = ours[col].to_numpy(float)
            b = theirs.loc[ours.index, col].to_numpy(float)
            na, nb = np.isnan(a), np.isnan(b)
            bad = np.flatnonzero(na != nb)
            assert not len(bad), (f"res_{kind}.{col}: NaN pattern differs at ids {list(ours.index[bad][:5])} "
                                  f"(gridtape {a[bad][:5]}, pandapower {b[bad][:5]})")
            ok = ~na & ~(np.isinf(a) & np.isinf(b) & (np.sign(a) == np.sign(b)))
            d = np.abs(a[ok] - b[ok])
            out[(kind, col)] = float(d.max()) if d.size else 0.0
    return out


def worst(d: dict) -> dict:
    """The worst difference per quantity class: vm, va, pq (MW/Mvar), other."""
    w = {"vm": 0.0, "va": 0.0, "pq": 0.0}
    for (_, col), v in d.items():
        key = "vm" if col.startswith("vm_") else "va" if col.startswith("va_") else \
            "pq" if col.startswith(("p_", "q_", "pl_", "ql_")) else None
        if key:
            w[key] = max(w[key], v)
    return w


def assert_agrees(grid, net, kinds=RES_KINDS, missing_ok=()):
    d = deltas(grid, net, kinds, missing_ok)
    assert d, "nothing compared"
    bad = {k: v for k, v in d.items() if not v <= limit(k[1])}
    assert not bad, "differs from pandapower: " + ", ".join(
        f"res_{k[0]}.{k[1]} {v:.3g}" for k, v in sorted(bad.items(), key=lambda kv: -kv[1])[:8])
    return d


def solve_and_compare(net, via="net", tmp_path=None, grid_kwargs=None, solve_kwargs=None, pp_kwargs=None,
                      kinds=RES_KINDS):
    """runpp(net, **pp_kwargs); gridtape solve(**solve_kwargs) of the same net; assert agreement."""
    ref = runpp(copy.deepcopy(net), **(pp_kwargs or {}))
    grid = grid_of(net, via, tmp_path, **(grid_kwargs or {}))
    rep = grid.solve(**(solve_kwargs or {}))
    assert rep.converged and ref.converged
    return assert_agrees(grid, ref, kinds)


def names(err) -> str:
    """Everything an error says about where it is: message, table, field, option."""
    parts = [str(err)]
    for a in ("table", "field", "option"):
        v = getattr(err, a, None)
        if v is not None:
            parts.append(str(v))
    return " ".join(parts)


def assert_refused(exc_info, *words):
    """The error is a gridtape error and names every one of ``words``."""
    err = exc_info.value
    assert isinstance(err, E.GridtapeError), f"{type(err).__name__} is not a gridtape error: {err}"
    text = names(err)
    for w in words:
        assert w in text, f"{w!r} not named in {text!r}"


# --- the sweep over pandapower's bundled networks (benchmarks/compare_pandapower.py) ----------

def perturbed(net, seed=0, lines_out=3):
    """``net`` with random tap positions (every transformer with a tap range) and a few lines out
    of service, chosen by ``seed``."""
    rng = np.random.default_rng(seed)
    net = copy.deepcopy(net)
    for kind in ("trafo", "trafo3w"):
        t = net[kind]
        if not len(t) or "tap_min" not in t:
            continue
        lo, hi = t.tap_min.to_numpy(float), t.tap_max.to_numpy(float)
        ok = np.isfinite(lo) & np.isfinite(hi) & (hi >= lo) & np.isfinite(t.tap_pos.to_numpy(float))
        if ok.any():
            pos = t.tap_pos.to_numpy(float).copy()
            pos[ok] = np.floor(lo[ok] + rng.random(ok.sum()) * (hi[ok] - lo[ok] + 1))
            net[kind]["tap_pos"] = np.minimum(pos, np.where(ok, hi, pos))
    on = np.flatnonzero(net.line.in_service.to_numpy(bool))
    if len(on) > lines_out + 1:
        out = net.line.index[rng.choice(on, lines_out, replace=False)]
        net.line.loc[out, "in_service"] = False
    return net


def clear_results(net):
    for k in [k for k in net.keys() if isinstance(k, str) and k.startswith("res_")]:
        net[k] = net[k].iloc[0:0]
    return net


def compare_case(net, qlim=False, tol=None):
    """One comparison of the sweep: ``(status, worst, note)``.  status: "agree", "refused" (a gridtape
    error naming what it does not model), "DIFFERS" (a silent difference: the defect the rule
    forbids), "both diverge", "pp diverges" (runpp fails, gridtape converges), "gt diverges";
    worst: ``{"vm", "va", "pq"}``; note: the error or the worst columns."""
    import pandapower as pp

    net = clear_results(copy.deepcopy(net))
    ref = copy.deepcopy(net)
    pp_ok = True
    try:
        runpp(ref, enforce_q_lims=qlim)
    except Exception as e:  # noqa: BLE001 - LoadflowNotConverged and pandapower's own refusals
        pp_ok = False
        pp_err = type(e).__name__
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            grid = grid_of(net, qlim=qlim)
            rep = grid.solve()
            if rep.converged:
                grid.post_process()
    except E.GridtapeError as e:
        return "refused", {}, f"{type(e).__name__}: {e}"
    if not pp_ok:
        return ("both diverge" if not rep.converged else "pp diverges"), {}, pp_err
    if not rep.converged:
        return "gt diverges", {}, f"mismatch {rep.mismatch:.3g}"
    missing = [k for k in RES_KINDS if k in net and len(net[k]) and k not in grid.post_process()]
    # a Q-limit round-off tie is reported to the user (QLimitTieWarning naming the gens): a
    # difference it explains is "tie, named", not silent
    ties = [c.message for c in caught if isinstance(c.message, E.QLimitTieWarning)]
    differs = "tie, named" if ties else "DIFFERS"
    named = f"QLimitTieWarning gen {list(ties[0].rows)[:5]}; " if ties else ""
    try:
        d = deltas(grid, ref, missing_ok=missing)
    except AssertionError as e:
        return differs, {}, named + str(e)[:160]
    bad = {k: v for k, v in d.items() if not v <= (tol or limit)(k[1])}
    w = worst(d)
    if bad:
        top = sorted(bad.items(), key=lambda kv: -kv[1])[:3]
        return differs, w, named + ", ".join(f"res_{k[0]}.{k[1]} {v:.3g}" for k, v in top)
    if missing:
        return "no " + "/".join(f"res_{k}" for k in missing), w, ""
    return "agree", w, ""
