"""Which results a study keeps per step, and how they are read off a solved engine.

An output is a ``(kind, column)`` pair of a result table (``("bus", "vm_pu")``, also written
``"res_bus.vm_pu"``).  Per step only the requested ones are computed, as one row of floats in the
order of the kind's element ids.  The default is :data:`DEFAULT`.
"""
from __future__ import annotations

import numpy as np

from gridtape.errors import SchemaError
from gridtape.solver_cy import results as R

DEFAULT = (("bus", "vm_pu"), ("bus", "va_degree"), ("line", "loading_percent"), ("line", "p_from_mw"),
           ("trafo", "loading_percent"), ("trafo", "p_hv_mw"), ("ext_grid", "p_mw"), ("ext_grid", "q_mvar"),
           ("gen", "q_mvar"))


def parse_outputs(outputs, world) -> tuple:
    """The requested outputs as a tuple of (kind, column), checked against the result tables.
    ``None`` is the default set, restricted to kinds the world has elements of."""
    if outputs is None:
        return tuple((k, c) for k, c in DEFAULT if len(world[k]))
    if isinstance(outputs, str):
        outputs = [outputs]
    if isinstance(outputs, dict):
        outputs = [(k, c) for k, cols in outputs.items() for c in ([cols] if isinstance(cols, str) else cols)]
    out = []
    for o in outputs:
        if isinstance(o, str):
            kind, _, col = o.partition(".")
        else:
            kind, col = o
        kind = kind[4:] if kind.startswith("res_") else kind
        if kind not in R.COLUMNS or col not in R.COLUMNS[kind]:
            raise SchemaError(f"no result column res_{kind}.{col}", table=f"res_{kind}", field=col)
        if (kind, col) not in out:
            out.append((kind, col))
    if not out:
        raise SchemaError("no outputs requested", field="outputs")
    return tuple(out)


def output_name(kind, col) -> str:
    return f"res_{kind}.{col}"


class Extractor:
    """Reads the requested outputs off an engine after a converged solve.  The common columns
    (bus voltages, line and trafo flows and loading, generator and ext_grid powers) come from
    the voltages through the flow kernels; any other result column through the result tables."""

    _FAST = {("bus", "vm_pu"), ("bus", "va_degree"), ("line", "p_from_mw"), ("line", "loading_percent"),
             ("trafo", "p_hv_mw"), ("trafo", "loading_percent"), ("ext_grid", "p_mw"), ("ext_grid", "q_mvar"),
             ("gen", "p_mw"), ("gen", "q_mvar")}

    def __init__(self, world, outputs):
        self.world = world
        self.outputs = outputs
        self.sizes = [len(world[k]) for k, _ in outputs]
        self._slow = any(o not in self._FAST for o in outputs)
        self._branch = any(k in ("line", "trafo") for k, _ in outputs)
        self._gens = any(k in ("gen", "ext_grid") for k, _ in outputs)
        self._genmap = None  # (topology, solver_cy.batch.GenMap) of the batch path
        self._const = {}  # kind -> (topology, loading constants)

    def rows(self, engine) -> list:
        """One float64 array per output (the element ids' order)."""
        w = self.world
        V = engine.V
        topo = engine.topo
        sn = w.sn_mva
        sf = st = pg = qg = None
        if self._branch:
            from gridtape.solver_cy.flows import branch_flows

            br = topo.branches
            Vz = np.where(np.isfinite(V), V, 0)
            sf, st, _, _ = branch_flows(br.f, br.t, br.yff, br.yft, br.ytf, br.ytt, Vz)
            sf = sf * sn
            st = st * sn
        if self._gens:
            if hasattr(engine, "results"):  # the one result path of the rebuilt solver (result_arrays)
                r = engine.results()
                pg, qg = r.gen_p, r.gen_q
            else:
                pg, qg = R._gen_pq(engine)
        tables = R.compute(engine) if self._slow else None
        out = []
        for kind, col in self.outputs:
            if tables is not None and (kind, col) not in self._FAST:
                out.append(tables[kind][col].to_numpy(dtype=float))
            elif kind == "bus":
                v = V[topo.lookup]
                out.append(np.abs(v) if col == "vm_pu" else np.rad2deg(np.angle(v)))
            elif kind in ("line", "trafo"):
                out.append(_branch_column(w, topo, kind, col, V, sf, st, self._const))
            else:
                g = engine.inj.gens
                vals = np.zeros(len(w[kind]))
                m = g["kind"] == (0 if kind == "ext_grid" else 1)
                vals[g["row"][m]] = (pg if col == "p_mw" else qg)[m]
                out.append(vals)
        return out


    def rows_batch(self, engine, Vs, ok, inj):
        """The outputs of a chunk of steps solved on one model with the batch path: ``Vs`` (steps x
        buses, internal order, NaN at unsupplied buses), ``ok`` (converged), ``inj`` (the steps'
        injection arrays from solver_cy.batch.InjectionMap.chunk).  One (steps x elements) array
        per output, NaN rows where a step did not converge.  Per step only the flow kernels run;
        the rest is done on the whole chunk."""
        from gridtape.solver_cy.flows import branch_flows, bus_injection

        n = len(Vs)
        out = [np.full((n, m), np.nan) for m in self.sizes]
        w, topo = self.world, engine.topo
        sn = w.sn_mva
        good = np.flatnonzero(ok)
        if not len(good):
            return out
        V = Vs[good]
        Vz = np.where(np.isfinite(V), V, 0)
        br = topo.branches
        sf = st = pg = qg = None
        if self._branch:
            sf = np.empty((len(good), len(br.f)), complex)
            st = np.empty_like(sf)
            for i in range(len(good)):
                sf[i], st[i], _, _ = branch_flows(br.f, br.t, br.yff, br.yft, br.ytf, br.ytt, Vz[i])
            sf *= sn
            st *= sn
        if self._gens:
            if self._genmap is None or self._genmap[0] is not engine.topo:
                from gridtape.solver_cy.batch import GenMap

                self._genmap = (engine.topo, GenMap(engine, _split))
            gm = self._genmap[1]
            gbs = gm.buses
            S = np.empty((len(good), len(gbs)), complex)
            for i in range(len(good)):
                S[i] = bus_injection(engine.indptr, engine.indices, engine.ydata, Vz[i])[gbs]
            pg, qg = gm.apply(S.real * sn + inj.at("pd", gbs, good), S.imag * sn + inj.at("qd", gbs, good),
                              inj.at("gp", np.arange(gm.ng), good))
        g = engine.inj.gens
        vb = V[:, topo.lookup] if any(k == "bus" for k, _ in self.outputs) else None
        for a, (kind, col) in zip(out, self.outputs):
            if kind == "bus":
                a[good] = np.abs(vb) if col == "vm_pu" else np.rad2deg(np.angle(vb))
            elif kind in ("line", "trafo"):
                a[good] = _branch_column(w, topo, kind, col, V, sf, st, self._const)
            else:
                m = g["kind"] == (0 if kind == "ext_grid" else 1)
                sub = np.zeros((len(good), a.shape[1]))
                sub[:, g["row"][m]] = (pg if col == "p_mw" else qg)[:, m]
                a[good] = sub
        return out


def _split(engine, inj, V):
    """The generator split of the result path (pfsoln) on ``engine``'s model with other injection
    arrays and voltages: the rebuilt solver's kernel (resk.gen_pq) when there, else
    results._gen_pq."""
    if hasattr(engine, "gen_split"):
        from gridtape.solver_cy.flows import bus_injection
        from gridtape.solver_cy.resk import gen_pq

        sbus = bus_injection(engine.indptr, engine.indices, engine.ydata, np.asarray(V, complex)) * engine.world.sn_mva
        return gen_pq(engine.gen_split(None), sbus, inj.pd, inj.qd, inj.gens["p"], None, False)
    return R._gen_pq(_EngineView(engine, inj, V))


class _EngineView:
    """What the generator split of the result path reads of an engine, for one step of a batch
    (its voltages and injection arrays) -- the engine itself keeps the model's."""

    def __init__(self, engine, inj, V):
        self.topo, self.world, self.inj, self.V = engine.topo, engine.world, inj, V
        self.indptr, self.indices, self.ydata = engine.indptr, engine.indices, engine.ydata
        self.slack_plan, self._qlim_active = None, False
        self._engine = engine

    def _gen_q(self, V, limited=None, fixed_q=None):
        return type(self._engine)._gen_q(self, V, limited, fixed_q)


def _branch_column(w, topo, kind, col, V, sf, st, cache):
    """A line or trafo result column from the branch flows (MVA, one step or steps x branches):
    the quantities solver_cy/results.py computes for res_line / res_trafo, the loading written as
    ``max(|s_f| / vm_f * c_f, |s_t| / vm_t * c_t)`` with the per-branch constants of
    :func:`_loading_constants`."""
    br = topo.branches
    n = len(w[kind])
    if kind not in br.slices:
        return np.full(sf.shape[:-1] + (n,), np.nan)
    s0, s1 = br.slices[kind]
    if col in ("p_from_mw", "p_hv_mw"):
        return sf[..., s0:s1].real.copy()
    f, t, cf, ct, zero = _loading_constants(w, topo, kind, cache)
    vm = np.abs(V)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.maximum(np.abs(sf[..., s0:s1]) / vm[..., f] * cf, np.abs(st[..., s0:s1]) / vm[..., t] * ct)
    if zero is not None:
        out[..., zero] = np.inf
    return out


def _loading_constants(w, topo, kind, cache):
    """(f, t, c_f, c_t, zero): the branch ends and the factors that turn |S| / |V| (MVA, p.u.) at
    each end into percent of the rating; ``zero``: lines rated 0 kA (loading inf), or None.  Kept
    in ``cache`` (the extractor's) for the topology they were made for (ratings cannot be
    profiled)."""
    hit = cache.get(kind)
    if hit is not None and hit[0] is topo:
        return hit[1]
    br = topo.branches
    s0, s1 = br.slices[kind]
    f, t = br.f[s0:s1], br.t[s0:s1]
    kv = topo.base_kv
    c = w[kind].cols
    zero = None
    with np.errstate(invalid="ignore", divide="ignore"):
        if kind == "line":  # i = |S| / (|V| kV sqrt3), loading = i / (max_i_ka df parallel) 100
            i_max = c["max_i_ka"] * c["df"] * c["parallel"]
            cf = 100.0 / (kv[f] * R.SQRT3 * i_max)
            ct = 100.0 / (kv[t] * R.SQRT3 * i_max)
            zero = np.flatnonzero(i_max == 0) if (i_max == 0).any() else None
        else:  # loading = max(i_hv vn_hv, i_lv vn_lv) sqrt3 / sn_mva 100 / parallel / df
            d = c["sn_mva"] * c["parallel"] * c["df"]
            cf = c["vn_hv_kv"] / (kv[f] * d) * 100.0
            ct = c["vn_lv_kv"] / (kv[t] * d) * 100.0
    val = (f, t, cf, ct, zero)
    cache[kind] = (topo, val)
    return val
