"""``networks()``: small random valid grids that converge.

A drawn network has one slack (an ext_grid at bus 0), PV buses (gens) and PQ buses (loads, some
sgens), joined by a random spanning tree of lines (radial) plus, when meshed, extra lines between
buses of one voltage level; with transformers, some tree edges step down from 110 kV to 20 kV
through a transformer.  Parameters are plausible per-unit values for those voltage levels.  The
network is built from the change vocabulary (AddRows on an empty world) and solved; a draw that
does not converge is rejected, naming why (``hypothesis.event``, shown by
``--hypothesis-show-statistics``).
"""
from __future__ import annotations

from hypothesis import assume, event
from hypothesis import strategies as st

from gridtape.world import World
from gridtape.world.changes import AddRows, apply

HV, MV = 110.0, 20.0
#: per-km line parameters by voltage level: (r, x, c) ranges and length range
LINE = {HV: ((0.05, 0.12), (0.30, 0.42), (8.0, 12.0), (5.0, 60.0), 0.6),
        MV: ((0.10, 0.30), (0.10, 0.40), (150.0, 300.0), (0.5, 8.0), 0.4)}
LOAD = {HV: (2.0, 30.0), MV: (0.2, 4.0)}


def _u(draw, lo_hi):
    """A value in [lo, hi] on a grid of 1/200 of the range (integers shrink fast, floats slowly)."""
    lo, hi = lo_hi
    return lo + (hi - lo) * draw(st.integers(0, 200)) / 200


@st.composite
def _networks(draw, min_buses, max_buses, meshed, with_trafos, journal, max_loading):
    n = draw(st.integers(min_buses, max_buses))
    mesh = draw(st.booleans()) if meshed is None else bool(meshed)
    trafos = draw(st.booleans()) if with_trafos is None else bool(with_trafos)
    level = [HV]
    parent = [None]
    via_trafo = [False]
    for i in range(1, n):
        p = draw(st.integers(0, i - 1))
        step_down = trafos and level[p] == HV and draw(st.integers(0, 3)) == 0
        parent.append(p)
        via_trafo.append(step_down)
        level.append(MV if step_down else level[p])
    if with_trafos and n > 1 and not any(via_trafo):  # asked for transformers: the last bus (a leaf) steps down
        via_trafo[-1], level[-1] = True, MV
    lines, tr = [], []
    for i in range(1, n):
        (tr if via_trafo[i] else lines).append((parent[i], i))
    if mesh:
        pairs = [(a, b) for a in range(n) for b in range(a + 1, n)
                 if level[a] == level[b] and (a, b) not in lines and parent[b] != a]
        if not pairs and meshed:  # asked for a loop, and this tree has no room for one
            event("networks(): rejected a draw with no two unjoined buses of one voltage level (meshed=True)")
            assume(False)
        if pairs:
            extra = draw(st.lists(st.sampled_from(pairs), min_size=1, max_size=max(1, n // 3), unique=True))
            lines += extra
    changes = [AddRows("bus", {"vn_kv": level, "name": [f"bus {i}" for i in range(n)]})]
    cols = {k: [] for k in ("from_bus", "to_bus", "length_km", "r_ohm_per_km", "x_ohm_per_km", "c_nf_per_km",
                            "max_i_ka")}
    for a, b in lines:
        r, x, c, length, imax = LINE[level[a]]
        for k, v in zip(cols, (a, b, _u(draw, length), _u(draw, r), _u(draw, x), _u(draw, c), imax)):
            cols[k].append(v)
    if lines:
        changes.append(AddRows("line", cols))
    if tr:
        k = len(tr)
        changes.append(AddRows("trafo", {
            "hv_bus": [a for a, _ in tr], "lv_bus": [b for _, b in tr],
            "sn_mva": [draw(st.sampled_from([25.0, 40.0, 63.0])) for _ in tr],
            "vn_hv_kv": [HV] * k, "vn_lv_kv": [MV] * k,
            "vk_percent": [_u(draw, (10.0, 12.5)) for _ in tr], "vkr_percent": [_u(draw, (0.25, 0.45)) for _ in tr],
            "pfe_kw": [_u(draw, (10.0, 30.0)) for _ in tr], "i0_percent": [_u(draw, (0.03, 0.08)) for _ in tr],
            "tap_side": ["hv"] * k}))
    changes.append(AddRows("ext_grid", {"bus": [0], "vm_pu": [_u(draw, (1.0, 1.03))]}))
    roles = [draw(st.sampled_from(("pq", "pq", "pq", "pv", "none"))) for _ in range(1, n)]
    pq = [i for i, r in zip(range(1, n), roles) if r == "pq"]
    pv = [i for i, r in zip(range(1, n), roles) if r == "pv" and level[i] == HV]
    if pq:
        p = [_u(draw, LOAD[level[i]]) * max_loading for i in pq]
        changes.append(AddRows("load", {"bus": pq, "p_mw": p,
                                        "q_mvar": [x * _u(draw, (0.0, 0.45)) for x in p]}))
        sg = [i for i in pq if draw(st.integers(0, 4)) == 0]
        if sg:
            changes.append(AddRows("sgen", {"bus": sg, "p_mw": [_u(draw, LOAD[level[i]]) / 2 for i in sg]}))
    if pv:
        changes.append(AddRows("gen", {"bus": pv, "p_mw": [_u(draw, (5.0, 30.0)) for _ in pv],
                                       "vm_pu": [_u(draw, (0.99, 1.04)) for _ in pv]}))
    w = World(sn_mva=1.0, name=f"drawn {n}-bus {'meshed' if mesh else 'radial'}")
    apply(w, changes)
    from gridtape import PowerGrid

    g = PowerGrid(world=w, journal=journal)
    rep = g.solve()
    if not rep.converged:
        event(f"networks(): rejected a {n}-bus {'meshed' if mesh else 'radial'} draw: no convergence "
              f"in {rep.iterations} iterations (mismatch {rep.mismatch:.3g} MVA)")
        g.close()
        assume(False)
    event(f"networks(): {'meshed' if mesh else 'radial'}{' with trafos' if tr else ''}")
    return g


def networks(min_buses=3, max_buses=12, *, meshed=None, with_trafos=None, journal=False, max_loading=1.0):
    """A small random valid :class:`~gridtape.PowerGrid` that converges (solved once already).

    ``min_buses``..``max_buses`` buses (bus 0 holds the slack ext_grid); ``meshed``: True (extra
    lines close loops), False (radial) or None (either); ``with_trafos``: True (some 110 kV ->
    20 kV transformers, when the tree allows), False or None (either).  ``journal``: the grid's
    journal (False: none; None: in memory, for undo/redo).  ``max_loading`` scales the loads."""
    if not 1 <= int(min_buses) <= int(max_buses):
        raise ValueError(f"networks() needs 1 <= min_buses <= max_buses (got {min_buses}, {max_buses})")
    return _networks(int(min_buses), int(max_buses), meshed, with_trafos, journal, float(max_loading))
