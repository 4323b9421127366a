"""Result copy: a solved engine's voltages, flows and element powers into the backend's float32
buffers (buffers.py), without DataFrames.

An AC flow is two kernel passes (``solver_cy/g2o.pyx``): ``ac_results`` (bus voltages, branch
results, element voltages) over a ``LinePack`` of the model's constants and ``inj_results``
(generator P/Q with pandapower's pfsoln split, loads, storage units, shunts) over an ``InjPack``.
The per-model arrays they read (``model_arrays``, one kernel pass) are kept for the engine's last
topologies; the generators' split constants per generator placement.  What depends on columns the
backend never writes (generator limits, slack flags and weights, load models, shunt ratings) is
computed once and recomputed when the world's dirty set says one of them (or a table's rows)
changed.  A DC flow (rare in grid2op: the initial flow's fallback, ``runpf(is_dc=True)``) and
voltage-dependent loads are copied in numpy here, until the solver's result arrays carry them.
"""
from __future__ import annotations

import numpy as np

from gridtape.solver_cy import model as M
from gridtape.solver_cy.engine import MODEL_CACHE
from gridtape.solver_cy.g2o import InjPack, LinePack, ac_results, inj_results, model_arrays, slack_table

from .buffers import INJ_GROUPS, Buffers

ZIP_COLUMNS = ("const_z_p_percent", "const_i_p_percent", "const_z_q_percent", "const_i_q_percent")
#: the columns the static constants and the generator split are made of
STATIC_KEYS = frozenset([("load", c) for c in ZIP_COLUMNS] + [
    ("shunt", "step"), ("shunt", "vn_kv"), ("gen", "min_q_mvar"), ("gen", "max_q_mvar"), ("gen", "slack"),
    ("gen", "slack_weight")])


class ResultCopy:
    """Fills ``out`` (a :class:`Buffers`) from the engine of a grid; ``dist_slack``: AC flows
    share the slack by weight (generator P as pandapower's ``runpp(distributed_slack=True)``)."""

    def __init__(self, out: Buffers, dist_slack: bool):
        self.out = out
        self.dist_slack = dist_slack
        self._dirty = None
        self.forget()

    def watch(self, world):
        """Follow ``world``'s changes (its dirty set) from now on; nothing derived is kept."""
        self._dirty = world.watch()
        self.forget()

    def forget(self):
        self._st = None  # per-grid constants (see _static)
        self._cur = None  # the per-model arrays of the engine's current model
        self._models = []  # those of its last topologies, least recently used first
        self._gsplits = {}  # generator split constants by generator placement (see _gen_split)

    # --- per-model arrays ----------------------------------------------------------------------
    def model(self, grid) -> dict:
        """The per-model arrays of the engine's current model.  They are derived from the engine's
        model object (its topology, internal bus numbering and NONE buses) and kept with it: the
        engine keeps the models of its last topologies, and a topology seen again finds its
        arrays.  Admittance values (shunt p/q writes) are read live by :meth:`fetch`."""
        d = self._dirty
        if d:
            if d.rows or d.network or not d.cols.isdisjoint(STATIC_KEYS):
                self.forget()
            d.clear()
        topo = grid._engine.topo
        mc = self._cur
        if mc is not None and mc["topo"] is topo:
            return mc
        models = self._models
        for i, m in enumerate(models):
            if m["topo"] is topo:
                mc = models.pop(i)
                break
        else:
            mc = self._new_model(grid, topo)
            while len(models) >= MODEL_CACHE:
                models.pop(0)
        models.append(mc)  # most recently used last
        self._cur = mc
        return mc

    def _new_model(self, grid, topo) -> dict:
        st = self._static(grid)
        tabs = grid.world.tables
        br = topo.branches
        act = topo.active
        sel = st["sel"]
        line_on, trafo_on = tabs["line"].cols["in_service"], tabs["trafo"].cols["in_service"]
        b2, kv2_on, amp_den, off2, eb, eon, suspect = model_arrays(
            topo.lookup, topo.base_kv, br.f, br.t, len(sel), tuple([topo.elem_bus_row[g] for g in INJ_GROUPS]),
            tuple([act[g] for g in INJ_GROUPS]), tuple([tabs[g].cols["in_service"] for g in INJ_GROUPS]),
            line_on, trafo_on, br.status)
        islanded = ""
        if suspect:  # the message (and the check itself)
            islanded = islanded_message(grid.world, topo, sel, np.concatenate((line_on, trafo_on)), eon.astype(bool))
        bus = {g: eb[sl] for g, sl in self.out.inj_slices.items()}
        mc = {"topo": topo, "sel": sel, "none": grid._engine._none,  # the model's NONE buses
              "b2": b2, "kv2_on": kv2_on, "amp_den": amp_den, "off2": off2,
              "act": act, "bus": bus, "islanded": islanded, "zip": st["zip"], "eb": eb, "eon": eon,
              "shunt_k": st["shunt_k"] * act["shunt"] if st["shunt_k"] is not None else None,
              "gen": self._gen_split(grid.world, topo, bus["gen"], act["gen"], False)}
        if self.dist_slack:  # AC solves share the slack (DC ones keep "gen")
            mc["gen_ds"] = self._gen_split(grid.world, topo, bus["gen"], act["gen"], True)
        return mc

    def _gen_split(self, world, topo, gen_bus, on, distributed):
        """:func:`gen_split`, kept by where the generators are: a topology that moves no generator
        (nor changes which of their buses are slack buses) reuses the last ones."""
        key = (gen_bus.tobytes(), on.tobytes(), (topo.bus_type[gen_bus] == M.REF).tobytes(), topo.nb, distributed)
        cache = self._gsplits
        out = cache.get(key)
        if out is None:
            if len(cache) >= 4 * MODEL_CACHE:
                cache.clear()
            out = cache[key] = gen_split(world, topo, gen_bus, on, self._st, distributed)
        return out

    def _static(self, grid) -> dict:
        """What the results need of columns the backend never writes (see STATIC_KEYS)."""
        st = self._st
        if st is not None:
            return st
        w = grid.world
        load, sh, c = w["load"].cols, w["shunt"].cols, w["gen"].cols
        nl, nt = len(w["line"]), len(w["trafo"])
        sl = grid._engine.topo.branches.slices
        if not (sl.get("line", (0, 0)) == (0, nl) and sl.get("trafo", (nl, nl)) == (nl, nl + nt)):
            raise ValueError("the engine's branch list is not led by the lines and transformers")
        self._st = st = {
            "zip": any(load[k].any() for k in ZIP_COLUMNS),
            "shunt_k": sh["step"] / sh["vn_kv"] ** 2 if len(sh) else None,
            "sel": np.arange(nl + nt),
            "qmin": np.nan_to_num(c["min_q_mvar"], nan=-M.Q_LIM_DEFAULT),
            "qmax": np.nan_to_num(c["max_q_mvar"], nan=M.Q_LIM_DEFAULT)}
        return st

    # --- the copy ------------------------------------------------------------------------------
    def fetch(self, grid, mc, is_dc) -> bool:
        """Every grid2op result of the engine's last solve; False when a line result is not
        finite."""
        if is_dc:
            self._fetch_dc(grid, mc)
            return bool(np.isfinite(self.out.buf["line"]).all())
        eng = grid._engine
        sn = grid.world.sn_mva
        topo = eng.topo
        br = topo.branches
        buf = self.out.buf
        pack = mc.get("pack")
        if pack is None:
            pack = mc["pack"] = LinePack(mc["none"], br.f, br.t, mc["b2"], mc["kv2_on"], mc["amp_den"], mc["off2"],
                                         buf["line"], topo.base_kv, mc["eb"], mc["eon"], buf["inj"])
        if pack.yff_obj is not br.yff:  # new admittance arrays (a shunt or branch parameter write)
            pack.admittances(br.yff, br.yft, br.ytf, br.ytt)
        V, vm, _, vkv, finite = ac_results(pack, eng.V, sn)
        ipack = mc.get("ipack")
        if ipack is None:
            act = mc["act"]
            ipack = mc["ipack"] = InjPack(buf["inj"], topo.nb, self.out.inj_sizes,
                                          mc["gen_ds"] if self.dist_slack else mc["gen"], act["gen"], act["load"],
                                          mc["bus"]["shunt"], mc["shunt_k"], not mc["zip"])
        tabs = grid.world.tables
        inj = eng.inj
        g, ld, sto, sh = tabs["gen"].cols, tabs["load"].cols, tabs["storage"].cols, tabs["shunt"].cols
        inj_results(ipack, V, eng.indptr, eng.indices, eng.ydata, inj.qd, inj.pd, sn, g["p_mw"], g["scaling"],
                    ld["p_mw"], ld["q_mvar"], ld["scaling"], sto["p_mw"], sto["q_mvar"], sh["p_mw"], sh["q_mvar"],
                    vkv)
        if mc["zip"]:
            self._loads(grid.world, mc, vm, vkv, False)
        return finite

    def _fetch_dc(self, grid, mc):
        """A DC flow's results, as pandapower's rundcpp reports them: set-point voltage magnitudes
        (1 p.u. elsewhere), lossless branch P, no Q but the shunts'."""
        eng = grid._engine
        sn = grid.world.sn_mva
        topo = eng.topo
        br = topo.branches
        V = eng.V.copy()
        V[mc["none"]] = 0.0  # unsupplied buses (NaN in the engine) read 0
        va = np.arctan2(V.imag, V.real)
        va *= 180.0 / np.pi
        vm = np.where(np.isnan(eng.inj.vm_set), 1.0, eng.inj.vm_set)
        vm[mc["none"]] = 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            bb = np.where(br.status, 1.0 / br.x, 0.0) / br.ratio
        p = bb * np.deg2rad(va[br.f] - va[br.t] - br.shift_deg) * sn
        nb = topo.nb
        pbus = np.bincount(br.f, p, nb) - np.bincount(br.t, p, nb) + eng.ysh.real * sn
        n = len(mc["sel"])
        s = np.concatenate((p[:n], -p[:n]))
        b2 = mc["b2"]
        vmb = vm[b2]
        L = self.out.buf["line"]
        L[0] = s
        L[1] = 0.0
        L[2] = vmb * mc["kv2_on"]
        a = np.abs(s)
        a /= vmb * mc["amp_den"] + mc["off2"]  # a switched-off line carries 0 A
        L[3] = a
        L[4] = va[b2]
        vkv = vm * topo.base_kv
        E = self.out.buf["inj"]
        eb, eon = mc["eb"], mc["eon"]
        E[2] = vkv[eb] * eon
        E[3] = va[eb] * eon
        G = self.out.grp["gen"]
        c = grid.world["gen"].cols
        gen_p = c["p_mw"] * c["scaling"]
        gen_p *= mc["act"]["gen"]
        G[0] = slack_shares(gen_p, mc["gen"]["ref"], pbus + eng.inj.pd)
        G[1] = 0.0
        self._loads(grid.world, mc, vm, vkv, True)

    def _loads(self, w, mc, vm, vkv, is_dc):
        """P and Q of loads (voltage-dependent ones included), storage units and shunts."""
        grp = self.out.grp
        b, act = mc["bus"], mc["act"]
        D = grp["load"]
        c = w["load"].cols
        sc = c["scaling"] * act["load"]
        if mc["zip"]:
            u = vm[b["load"]]
            zp, ip = c["const_z_p_percent"] / 100, c["const_i_p_percent"] / 100
            zq, iq = c["const_z_q_percent"] / 100, c["const_i_q_percent"] / 100
            D[0] = c["p_mw"] * sc * (1 - zp - ip + ip * u + zp * u * u)
            D[1] = c["q_mvar"] * sc * (1 - zq - iq + iq * u + zq * u * u)
        else:
            D[0] = c["p_mw"] * sc
            D[1] = c["q_mvar"] * sc
        if is_dc:
            D[1] = 0.0
        S = grp["storage"]
        if S.shape[1]:  # set-points: grid2op checks that a detached unit asks for no power
            c = w["storage"].cols
            S[0] = c["p_mw"]
            S[1] = 0.0 if is_dc else c["q_mvar"]
        if mc["shunt_k"] is not None:
            H = grp["shunt"]
            c = w["shunt"].cols
            vb = vkv[b["shunt"]]
            k = vb * vb * mc["shunt_k"]  # vm^2 (bus kV / shunt kV)^2 steps
            H[0] = k * c["p_mw"]
            H[1] = k * c["q_mvar"]  # also in DC, as pandapower reports it


def slack_shares(gen_p, ref, bal):
    """Generator P with the slack buses' balance shared out (``ref``: :func:`gen_split`'s; ``bal``:
    every bus's power balance, MW): one generator at the bus takes it, slack generators share
    what the fixed ones leave equally, or by weight beyond their set-points."""
    for rb, at, slack, fixed, share in ref:
        p_bus = bal[rb]
        if len(at) == 1:
            gen_p[at[0]] = p_bus
        elif len(slack) and share is None:
            gen_p[slack] = (p_bus - gen_p[fixed].sum()) / len(slack)
        elif len(slack):
            gen_p[slack] += (p_bus - gen_p[fixed].sum() - gen_p[slack].sum()) * share
    return gen_p


def islanded_message(w, topo, sel, line_on, eon) -> str:
    """Why the grid is split ('' when it is not): an in-service element on a bus the slack does
    not reach (pandapower leaves such a bus at NaN and grid2op calls it a game over).  ``eon``:
    whether each element of INJ_GROUPS (in that order) is active in ``topo``."""
    ins = np.concatenate([w[k].cols["in_service"] for k in INJ_GROUPS])
    if (ins > eon).any():  # in service but not active
        start = 0
        for kind in INJ_GROUPS:
            n = len(w[kind])
            bad = ins[start:start + n] > eon[start:start + n]
            if bad.any():
                return f"{kind} {np.flatnonzero(bad).tolist()} on a bus not connected to the slack"
            start += n
    bad = line_on > topo.branches.status[sel]
    if bad.any():
        return f"powerline {np.flatnonzero(bad).tolist()} in an island without slack"
    return ""


def gen_split(w, topo, gen_bus, on, st, distributed=False):
    """Constant parts of pfsoln's generator results (the grid's only generators are ``gen`` rows:
    ext_grids were turned into generators, xwards refused).

    Q: each bus's Q goes to its generators by reactive range, ``qmin + (Q - sum qmin) * range /
    sum range``, or equally when the ranges sum to nothing.  P: at each slack bus the bus balance
    minus the fixed generators, shared among the slack generators by slack weight.  With
    ``distributed`` slack, every generator with a non-zero weight counts as a slack one and its bus
    as a slack bus (pfsoln under ``runpp(distributed_slack=True)``): a weighted generator alone at
    its bus takes the bus balance, i.e. its set-point plus its share of the island's slack power."""
    c = w["gen"].cols
    rows = np.flatnonzero(on)
    gb = gen_bus[rows]
    nb = topo.nb
    qmin = st["qmin"][rows]
    qmax = st["qmax"][rows]
    qmn = np.bincount(gb, qmin, nb)[gb]
    qmx = np.bincount(gb, qmax, nb)[gb]
    is_slack = c["slack"]
    ref_bus = set(gb[topo.bus_type[gb] == M.REF].tolist())
    if distributed:
        is_slack = is_slack | (c["slack_weight"] != 0)
        ref_bus |= set(gb[is_slack[rows]].tolist())
    ref = []
    for rb in sorted(ref_bus):
        at = rows[gb == rb]
        slack = at[is_slack[at]]
        fixed = at[~is_slack[at]]
        wt = c["slack_weight"][slack]
        ref.append((rb, at, slack, fixed, wt / wt.sum() if wt.sum() > 0 else None))
    same = (qmn == qmx) | (len(rows) == 1)  # pfsoln leaves a lone generator's Q unsplit
    return {"rows": rows, "all": len(rows) == len(on), "bus": gb, "qmin": qmin, "qmn": qmn,
            "scale": (qmax - qmin) / (qmx - qmn + np.finfo(float).eps),
            "same": same, "any_same": bool(same.any()),
            "cnt": np.bincount(gb, minlength=nb)[gb].astype(float), "ref": ref,
            "slack_table": slack_table(ref)}  # ``ref`` as arrays, for the results kernel
