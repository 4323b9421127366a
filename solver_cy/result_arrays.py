"""One solve's results as arrays: the one result path.

:func:`compute_arrays` turns the engine's voltages into a :class:`ResultArrays` with the result
kernels (resk.pyx): bus voltages, branch flows, bus injections and the generator split, at once;
the P/Q of the one-bus elements on first request (:meth:`ResultArrays.element`).  The result
tables (results.py) and the grid2op adapter's float32 buffers (g2o.fill_buffers) are made from
these arrays only.  Units: MW, MVAr, p.u., degrees; internal bus order for bus arrays, the model's
branch order for branch arrays, the engine's generator table order (``gens``: pfsoln order,
ext_grid, gen, xward) for ``gen_p`` / ``gen_q``, world row order for element arrays.
"""
from __future__ import annotations

from operator import itemgetter

import numpy as np

from .chartables import shunt_step_values
from .g2o import fill_buffers
from .qlim import sgen_setpoints
from .resk import AcIndex, ac_arrays, dc_arrays, element_pq, gen_pq
from .resk import branch_loading as _loading

#: kernel code and columns of each one-bus element kind (resk.element_pq)
ELEMENT_COLUMNS = {
    "load": (0, ("p_mw", "q_mvar", "scaling", "const_z_p_percent", "const_i_p_percent", "const_z_q_percent",
                 "const_i_q_percent")),
    "sgen": (1, ("p_mw", "q_mvar", "scaling")),
    "storage": (1, ("p_mw", "q_mvar", "scaling")),
    "shunt": (2, ("p_mw", "q_mvar", "vn_kv", "step")),
    "ward": (3, ("ps_mw", "qs_mvar", "pz_mw", "qz_mvar")),
    "xward": (3, ("ps_mw", "qs_mvar", "pz_mw", "qz_mvar")),
}
_GEN_CODE = {"ext_grid": 0, "gen": 1, "xward": 2}
_GET = {kind: itemgetter(*names) for kind, (_, names) in ELEMENT_COLUMNS.items()}  # a kind's columns at once
SQRT3 = np.sqrt(3.0)


class ResultArrays:
    """The results of one solve (see the module docstring).

    - ``algorithm``: "nr" or "dc";
    - ``vm``, ``va``: bus voltage magnitude (p.u.) and angle (degrees), NaN at unsupplied buses;
      DC: 1 p.u.;
    - ``sf``, ``st``: complex power (MVA) entering each branch at its from / to end;
    - ``sbus``: complex power (MVA) each bus injects into the branches and bus shunts;
    - ``gen_p``, ``gen_q``: P (MW) and Q (MVAr) of each generator-table entry (``gens``);
    - :meth:`element`: P and Q of the rows of one element table;
    - ``topo``, ``inj``, ``world``, ``plan``, ``ps``: what they were computed from.

    The arrays are the model's result buffers: the next result arrays of the same model
    overwrite them (copy what you keep; the result tables do)."""

    __slots__ = ("algorithm", "world", "topo", "inj", "plan", "ps", "vm", "va", "sf", "st", "sbus", "gens",
                 "gen_p", "gen_q", "_elem", "_buf", "_sgen_lims", "const_loads")

    def element(self, kind: str, vm=None):
        """``(p, q)`` of every row of ``kind`` (MW, MVAr; 0 for inactive rows): load, sgen,
        storage, shunt, ward, xward (its constant-power and ward-impedance part: the xward branch
        is added by the result tables), ext_grid, gen.  ``vm``: other bus voltage magnitudes to
        evaluate the voltage-dependent parts at (not kept), e.g. a DC convention's."""
        if vm is not None:
            return self._element(kind, vm)
        hit = self._elem.get(kind)
        if hit is None:
            hit = self._elem[kind] = self._element(kind, self.vm)
        return hit

    @property
    def sgen_pq(self):
        """The sgens' set-points clipped to their limits (qlim.sgen_setpoints), or None."""
        qlim, plims = self._sgen_lims
        return sgen_setpoints(self.world, qlim, plims) if qlim or plims else None

    def _element(self, kind, vm):
        t = self.world.tables[kind]
        if kind == "ext_grid" or kind == "gen":
            n = len(t.ids)
            g = self.gens
            p, q = np.zeros(n), np.zeros(n)
            m = g["kind"] == _GEN_CODE[kind]
            p[g["row"][m]] = self.gen_p[m]
            q[g["row"][m]] = self.gen_q[m]
            return p, q
        # what a kind's element_pq call takes of the model: (code, columns, buses, active, out)
        fixed = self._buf.get(kind)
        if fixed is None:
            n = len(t.ids)
            code, names = ELEMENT_COLUMNS[kind]
            fixed = self._buf[kind] = (code, _GET[kind], self.topo.elem_bus(kind), self.topo.active[kind],
                                       (np.empty(n), np.empty(n)), n)
        code, get, eb, act, out, n = fixed
        if not n:
            return np.zeros(0), np.zeros(0)
        if vm is not self.vm:
            out = None
        c = t.cols
        if kind == "shunt":  # the step tables' values per step
            p, q = shunt_step_values(self.world)
            return element_pq(code, eb, act, vm, self.topo.base_kv, p, q, c["vn_kv"], c["step"], None, None, None,
                              out)
        cols = get(c)
        if kind == "sgen":  # set-points clipped to their limits
            sp = self.sgen_pq
            if sp is not None:
                cols = sp + cols[2:]
        elif kind == "load" and self.const_loads:  # runpp(voltage_depend_loads=False)
            cols = cols[:3] + (np.zeros(n),) * 4
        return element_pq(code, eb, act, vm, self.topo.base_kv, *cols, out=out)


def compute_arrays(engine, V, algorithm: str, qlim=None, polar=None) -> ResultArrays:
    """The result arrays of voltages ``V`` on the engine's current model.  ``qlim``: None, or
    (split, qoff, limited, fixed_q) of generators held at a reactive limit.  ``polar``: the
    magnitudes and angles (rad) of ``V`` the Newton solver holds (NewtonSolver.polar), or None."""
    topo, inj = engine.topo, engine.inj
    buf = engine.model.buffers
    fixed = buf.get("bus")
    br = topo.branches
    if fixed is None:  # the model's result buffers, its branch ends and Ybus pattern (checked once)
        nb, nbr = topo.nb, len(br.f)
        fixed = buf["bus"] = ((np.empty(nb), np.empty(nb), np.empty(nbr, complex), np.empty(nbr, complex),
                               np.empty(nb, complex)), AcIndex(nb, br.f, br.t, engine.indptr, engine.indices))
    out, ix = fixed
    dc = algorithm == "dc"
    r = ResultArrays()
    r.algorithm, r.world, r.topo, r.inj, r.gens, r._elem, r._buf = algorithm, engine.world, topo, inj, inj.gens, {}, buf
    r.plan, r.ps = engine.slack_plan, engine.ps
    r.const_loads = not engine.solve_options.get("voltage_depend_loads", True)
    r._sgen_lims = (engine._qlim_active and not dc, engine._plims_active)
    if dc:
        r.vm, r.va, r.sf, r.st, r.sbus = dc_arrays(V, br.f, br.t, br.status, br.x, br.ratio,
                                                   br.shift_deg, engine.ysh, engine.world.sn_mva, out,
                                                   engine.va_dc if V is engine.V else None)
    else:
        r.vm, r.va, r.sf, r.st, r.sbus = ac_arrays(V, ix, br.yff, br.yft, br.ytf, br.ytt, engine.ydata,
                                                   engine.world.sn_mva, out, polar)
    if qlim is None:
        split, qoff = engine.gen_split(None if dc else engine.slack_plan), None
    else:
        split, qoff = qlim[0], qlim[1]
    gens = inj.gens
    out = buf.get("gen")
    if out is None or out[2] is not gens:
        ng = len(gens["bus"])
        out = buf["gen"] = (np.empty(ng), np.empty(ng), gens)
    r.gen_p, r.gen_q = gen_pq(split, r.sbus, inj.pd, inj.qd, gens["p"], qoff, dc, out)
    if qlim is not None:
        limited, fixed = qlim[2], qlim[3]
        r.gen_q[limited] = fixed[limited]
    return r


def fill_grid2op(res: ResultArrays, pack, sto_p, sto_q, vm=None) -> bool:
    """Copy ``res`` into the grid2op backend's float32 buffers (g2o.BufferPack ``pack``, made once
    per model); return whether every powerline value is finite.  ``sto_p``, ``sto_q``: what the
    backend reports for its storage units (float64, one per row).  ``vm``: bus magnitudes to
    report instead of ``res.vm`` (with the loads' and shunts' voltage-dependent parts evaluated
    at them), e.g. grid2op's DC convention.  One pass of g2o.fill_buffers after the element
    kernels; nothing here computes physics of its own."""
    if vm is None:
        vm = res.vm
        ld, sh = res.element("load"), res.element("shunt")
    else:
        ld, sh = res.element("load", vm), res.element("shunt", vm)
    return fill_buffers(pack, vm, res.va, res.sf, res.st, res.gens["gen_pos"], res.gen_p, res.gen_q, ld[0], ld[1],
                        sto_p, sto_q, sh[0], sh[1], res.algorithm == "dc")


def loading_constants(world, topo, kind: str, power: bool = False) -> tuple:
    """``(s0, f, t, c_f, c_t, zero, by_v)``: what :func:`branch_loading` needs for the ``kind``
    ("line" or "trafo") slice of the model's branches (``s0``: its first branch): the internal
    from / to (hv / lv) buses, the per-branch factors, ``zero`` (lines rated 0 kA: loading inf;
    or None) and ``by_v`` (whether |S| is divided by |V|: a current loading).

    - line: ``i = |S| / (|V| kV sqrt3)``, ``loading = max(i_f, i_t) / (max_i_ka df parallel) 100``;
    - trafo (current, pandapower's default): ``max(i_hv vn_hv, i_lv vn_lv) sqrt3 / sn_mva 100 /
      parallel / df``; ``power``: ``max(|S_hv|, |S_lv|) / sn_mva 100 / parallel / df``.

    Ratings cannot be profiled: a study keeps these for its topology."""
    br = topo.branches
    s0, s1 = br.slices[kind]
    f, t = np.ascontiguousarray(br.f[s0:s1]), np.ascontiguousarray(br.t[s0:s1])
    kv = topo.base_kv
    c = world[kind].cols
    zero = None
    by_v = True
    with np.errstate(invalid="ignore", divide="ignore"):
        if kind == "line":
            i_max = c["max_i_ka"] * c["df"] * c["parallel"]
            cf = 100.0 / (kv[f] * SQRT3 * i_max)
            ct = 100.0 / (kv[t] * SQRT3 * i_max)
            zero = np.flatnonzero(i_max == 0) if (i_max == 0).any() else None
        elif kind == "trafo":
            d = c["sn_mva"] * c["parallel"] * c["df"]
            if power:
                cf = ct = 100.0 / d
                by_v = False
            else:
                cf = c["vn_hv_kv"] / (kv[f] * d) * 100.0
                ct = c["vn_lv_kv"] / (kv[t] * d) * 100.0
        else:
            raise ValueError(f"loading_constants: no loading formula for {kind}")
    cf = np.ascontiguousarray(cf, dtype=np.float64)
    ct = np.ascontiguousarray(ct, dtype=np.float64)
    return s0, f, t, cf, ct, zero, by_v


def branch_loading(vm, sf, st, const, out=None) -> np.ndarray:
    """Loading (percent) of the branches of :func:`loading_constants` ``const`` from the bus
    magnitudes ``vm`` (p.u.) and the flows ``sf``, ``st`` (MVA) of every branch of the model, for
    one solve (1-d) or for solves x buses / branches (2-d): ``max(|s_f| / |v_f| c_f, |s_t| / |v_t|
    c_t)`` (NaN when either end is), by the kernel resk.branch_loading: the one loading formula
    of the result tables and the studies.  ``out``: a C-contiguous float64 array to write into
    (a study's rows), else a new one."""
    s0, f, t, cf, ct, zero, by_v = const
    vm2 = np.ascontiguousarray(vm, dtype=np.float64)
    if out is None:
        out = np.empty(sf.shape[:-1] + (len(f),))
    _loading(vm2, np.ascontiguousarray(sf), np.ascontiguousarray(st), s0, f, t, cf, ct, by_v, out)
    if zero is not None:
        out[..., zero] = np.inf
    return out
