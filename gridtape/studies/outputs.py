"""Which results a study keeps per step, and how they are read off a solved engine.

An output is a ``(kind, column)`` pair of a result table (``("bus", "vm_pu")``, also written
``"res_bus.vm_pu"``).  Per step only the requested ones are computed, as one row of floats in the
order of the kind's element ids.  The default is :data:`DEFAULT`.
"""
from __future__ import annotations

import numpy as np

from gridtape.errors import SchemaError
from gridtape.solver_cy import results as R
from gridtape.solver_cy.result_arrays import branch_loading, loading_constants

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
    try:
        outputs = list(outputs)
    except TypeError:
        raise SchemaError(f"outputs is a list of result columns ('res_bus.vm_pu' or ('bus', 'vm_pu')), not "
                          f"{outputs!r}", field="outputs") from None
    out = []
    for o in outputs:
        if isinstance(o, str):
            kind, _, col = o.partition(".")
        elif isinstance(o, (tuple, list)) and len(o) == 2 and all(isinstance(x, str) for x in o):
            kind, col = o
        else:
            raise SchemaError(f"an output is 'res_<kind>.<column>' or a pair (kind, column), not {o!r}",
                              field="outputs")
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
    the solver's result arrays (the one result path); any other result column through the result
    tables."""

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
        self._const = {}  # kind -> (topology, loading constants)
        self._buf = None  # the result kernels' arrays of the last chunk (reused: no fresh pages per chunk)
        self._gbuf = None  # the generator split's arrays of the last chunk

    def _scratch(self, k, nb, nbr):
        """(vm, va, sf, st, sbus) for ``k`` steps: views of arrays kept from chunk to chunk."""
        b = self._buf
        if b is None or len(b[0]) < k or b[0].shape[1] != nb or b[2].shape[1] != nbr:
            b = self._buf = (np.empty((k, nb)), np.empty((k, nb)), np.empty((k, nbr), complex),
                             np.empty((k, nbr), complex), np.empty((k, nb), complex))
        return tuple(a[:k] for a in b)

    def rows(self, engine) -> list:
        """One float64 array per output (the element ids' order), from the engine's result arrays
        (solver_cy/result_arrays.py: the one result path)."""
        w = self.world
        topo = engine.topo
        res = engine.results()
        tables = R.compute(engine) if self._slow else None
        out = []
        for kind, col in self.outputs:
            if tables is not None and (kind, col) not in self._FAST:
                out.append(tables[kind][col].to_numpy(dtype=float))
            elif kind == "bus":
                out.append((res.vm if col == "vm_pu" else res.va)[topo.lookup])
            elif kind in ("line", "trafo"):
                out.append(self._branch_row(w, topo, kind, col, res, _power(engine)))
            else:
                out.append(res.element(kind)[0 if col == "p_mw" else 1])
        return out

    def rows_batch(self, engine, Vs, ok, inj, out, polar=None):
        """The outputs of a chunk of steps solved on one model with the batch path: ``Vs`` (steps x
        buses, internal order, NaN at unsupplied buses), ``ok`` (converged), ``inj`` (the steps'
        injection arrays, solver_cy.batch.ChunkInjections), written into ``out``: one (steps x
        elements) array per output, NaN rows where a step did not converge.  ``polar``: the
        solver's (magnitudes, angles) of ``Vs`` (resk.ac_steps takes them instead of |V|, arg V).
        Kernels over the chunk's converged steps at once, without the GIL (resk.ac_steps: voltages,
        branch flows and the injections at the generators' buses; resk.gen_steps: the generator
        split; resk.branch_loading; resk.take_steps picks the columns into ``out``)."""
        from gridtape.solver_cy.resk import ac_steps, gen_steps, take_steps

        n = len(Vs)
        ok = np.asarray(ok, bool)
        good = np.flatnonzero(ok).astype(np.int64)
        k = len(good)
        if k < n:
            for a in out:
                a[~ok] = np.nan
        if not k:
            return out
        w, topo = self.world, engine.topo
        br = topo.branches
        nb, nbr = topo.nb, len(br.f)
        g = engine.inj.gens
        ng = len(g["bus"])
        vm, va, sf, st, sbus = self._scratch(k, nb, nbr)
        pick = self._picks(topo, g)
        gb = pick["gen_buses"] if self._gens else None
        ac_steps(np.ascontiguousarray(Vs), good, br.f, br.t, br.yff, br.yft, br.ytf, br.ytt, engine.indptr,
                 engine.indices, engine.ydata, w.sn_mva, (vm, va, sf, st, sbus), gb, polar)
        if self._gens:
            # the split reads the loads at generator buses only: the rest of pd / qd stays unset
            pd, qd, pg, qg = self._gen_scratch(k, nb, ng)
            pd[:, gb] = inj.at("pd", gb, good)
            qd[:, gb] = inj.at("qd", gb, good)
            gen_steps(engine.gen_split(None), sbus, pd, qd, inj.at("gp", pick["gen_all"], good), (pg, qg))
        power = _power(engine)
        for a, (kind, col) in zip(out, self.outputs):
            if kind == "bus":
                take_steps(vm if col == "vm_pu" else va, pick["bus"], good, a)
            elif kind in ("line", "trafo"):
                if kind not in br.slices:
                    a[good] = np.nan
                elif col in ("p_from_mw", "p_hv_mw"):
                    take_steps(sf, pick[kind], good, a)
                else:  # the one loading formula, into the rows when every step converged
                    dst = branch_loading(vm, sf, st, self._loading_const(w, topo, kind, power), a if k == n else None)
                    if k < n:
                        take_steps(dst, pick["all_" + kind], good, a)
            else:
                take_steps(pg if col == "p_mw" else qg, pick[kind], good, a)
        return out

    def _picks(self, topo, g) -> dict:
        """The columns :func:`resk.take_steps` picks per output kind, for ``topo`` (kept while it is
        the engine's): bus results by bus id, each line / trafo's branch, each ext_grid / gen's
        place among the generators (-1: not one, 0 MW)."""
        hit = self._const.get("picks")
        if hit is not None and hit[0] is topo:
            return hit[1]
        br = topo.branches
        w = self.world
        pick = {"bus": np.asarray(topo.lookup, np.int64),
                "gen_buses": np.unique(np.asarray(g["bus"], np.int64)),
                "gen_all": np.arange(len(g["bus"]))}
        for kind in ("line", "trafo"):
            if kind in br.slices:
                s0, s1 = br.slices[kind]
                pick[kind] = np.arange(s0, s1, dtype=np.int64)
                pick["all_" + kind] = np.arange(s1 - s0, dtype=np.int64)
        for code, kind in ((0, "ext_grid"), (1, "gen")):
            m = np.flatnonzero(np.asarray(g["kind"]) == code)
            col = np.full(len(w[kind]), -1, np.int64)
            col[np.asarray(g["row"])[m]] = m
            pick[kind] = col
        self._const["picks"] = (topo, pick)
        return pick

    def _gen_scratch(self, k, nb, ng):
        """(pd, qd, pg, qg) for ``k`` steps, kept from chunk to chunk."""
        b = self._gbuf
        if b is None or len(b[0]) < k or b[0].shape[1] != nb or b[2].shape[1] != ng:
            b = self._gbuf = (np.empty((k, nb)), np.empty((k, nb)), np.empty((k, ng)), np.empty((k, ng)))
        return tuple(a[:k] for a in b)

    def _branch_row(self, w, topo, kind, col, res, power):
        """A line or trafo result column of one solve from its result arrays (MVA flows, the
        loading by the result path's one formula, result_arrays.branch_loading)."""
        br = topo.branches
        if kind not in br.slices:
            return np.full(len(w[kind]), np.nan)
        s0, s1 = br.slices[kind]
        if col in ("p_from_mw", "p_hv_mw"):
            return res.sf[s0:s1].real.copy()
        return branch_loading(res.vm, res.sf, res.st, self._loading_const(w, topo, kind, power))

    def _loading_const(self, w, topo, kind, power):
        """The loading constants of ``kind`` (result_arrays.loading_constants), kept for the
        topology they were made for."""
        hit = self._const.get(kind)
        if hit is None or hit[0] is not topo or hit[1] != power:
            hit = self._const[kind] = (topo, power, loading_constants(w, topo, kind, power))
        return hit[2]


def _power(engine) -> bool:
    return engine.solve_options.get("trafo_loading", "current") == "power"
