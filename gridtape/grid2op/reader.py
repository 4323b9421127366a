"""Reading a grid2op environment's grid: ``grid.json`` into a World, the busbars, and the
description grid2op needs (element counts, names, substations and positions, in
PandaPowerBackend's order)."""
from __future__ import annotations

import json

import numpy as np
from grid2op.dtypes import dt_float, dt_int

from gridtape.errors import CaseError
from gridtape.world.io_json import read_pandapower_json

SQRT3 = np.sqrt(3.0)


def read_grid2op_json(path):
    """The World of a grid2op environment's ``grid.json``.

    grid2op's grids were written by pandapower 2 and carry ``tap_side = false`` on transformers
    without a tap changer; that reads as "no tap side" (None), which is what pandapower makes of it.
    An in-service ext_grid becomes a slack generator (grid2op models the slack as a generator),
    appended after the file's generators, of slack weight 1 + the ext_grid's; xwards are refused
    (grid2op does not model them)."""
    with open(path, encoding="utf-8") as fh:
        doc = json.load(fh)
    net = doc.get("_object", {}) if isinstance(doc, dict) else {}
    for kind in ("trafo", "trafo3w"):
        tab = net.get(kind)
        if isinstance(tab, dict) and isinstance(tab.get("_object"), str):
            raw = json.loads(tab["_object"])
            cols = raw.get("columns", [])
            if "tap_side" in cols:
                j = cols.index("tap_side")
                for row in raw.get("data", []):
                    if not isinstance(row[j], str):
                        row[j] = None
                tab["_object"] = json.dumps(raw)
    world = read_pandapower_json(json.dumps(doc))
    if len(world["xward"]):
        raise CaseError("xward elements are not supported by GridtapeBackend (grid2op does not model them)",
                        file=str(path), table="xward")
    _ext_grid_to_slack_gen(world)
    return world


def _ext_grid_to_slack_gen(world):
    eg = world["ext_grid"]
    if not len(eg):
        return
    on = eg.cols["in_service"]
    k = int(on.sum())
    # PandaPowerBackend keeps the ext_grid and adds a slack generator of weight 1 at its bus: under
    # distributed slack that bus weighs 1 + the ext_grid's weight
    wt = 1.0 + np.nan_to_num(eg.cols["slack_weight"][on])
    # no reactive limits (NaN: +-1e9, not the gen table's default of +-inf, whose range is NaN)
    world.add("gen", {"bus": eg.cols["bus"][on], "p_mw": np.zeros(k), "vm_pu": eg.cols["vm_pu"][on],
                      "slack": np.ones(k, bool), "slack_weight": wt,
                      "min_q_mvar": np.full(k, np.nan), "max_q_mvar": np.full(k, np.nan)})
    world.remove("ext_grid", eg.ids.copy())


def journal_arg(journal):
    """PowerGrid's ``journal`` argument for the backend's: None / False = off, True = in memory,
    else a journal file path or a :class:`gridtape.journal.Journal`."""
    if journal is None or journal is False:
        return False
    return None if journal is True else journal


def add_busbars(world, n_busbar):
    """Busbars 2..n of every substation become buses after the original ones.  Every bus is in
    service (an empty busbar is merely unsupplied), so moving elements never writes buses.
    Returns ``(n_sub, bus_ids, row_of_bus)``: bus row r is busbar ``r // n_sub + 1`` of substation
    ``r % n_sub``; ``row_of_bus[id]`` is the row of bus ``id``."""
    bus = world["bus"]
    n_sub = len(bus)
    if not bus.cols["in_service"].all():
        world.set_values("bus", bus.ids, "in_service", True)
    vn, names = bus.cols["vn_kv"].copy(), bus.cols["name"].copy()
    for _ in range(n_busbar - 1):
        world.add("bus", {"vn_kv": vn, "name": names, "in_service": np.ones(n_sub, bool)})
    bus_ids = world["bus"].ids.copy()
    row_of = np.full(int(bus_ids.max()) + 1, -1, dtype=np.int64)
    row_of[bus_ids] = np.arange(len(bus_ids))
    return n_sub, bus_ids, row_of


def _names(tab, fmt):
    """Element names as PandaPowerBackend makes them: the name column, or ``fmt(row)``."""
    names = tab.cols["name"]
    if len(names) and all(n is not None for n in names):
        return np.array([str(n) for n in names])
    return np.array([fmt(i) for i in range(len(tab))])


def describe(bk, world, n_sub, row):
    """Fill grid2op's GridObjects attributes of backend ``bk``, elements placed in
    PandaPowerBackend's order (``row``: bus id -> bus row)."""
    line, trafo, gen, load, sto, sh = (world[k] for k in ("line", "trafo", "gen", "load", "storage", "shunt"))
    nl = len(line)
    bk.n_sub = n_sub
    bk.name_sub = np.array([f"sub_{i}" for i in world["bus"].ids[:n_sub]])
    bk.n_line = nl + len(trafo)
    fb, tb, hv, lv = line.cols["from_bus"], line.cols["to_bus"], trafo.cols["hv_bus"], trafo.cols["lv_bus"]
    ln = _names(line, lambda i: f"{fb[i]}_{tb[i]}_{i}")
    tn = _names(trafo, lambda i: "{}_{}_{}".format(*sorted((str(hv[i]), str(lv[i]))), i + nl))
    bk.name_line = np.concatenate([ln, tn]) if len(tn) else ln
    bk.n_gen, bk.n_load, bk.n_storage = len(gen), len(load), len(sto)
    bk.name_gen = _names(gen, lambda i: f"gen_{gen.cols['bus'][i]}_{i}")
    bk.name_load = _names(load, lambda i: f"load_{load.cols['bus'][i]}_{i}")
    if bk.n_storage == 0:
        bk.set_no_storage()
    else:
        bk.name_storage = _names(sto, lambda i: f"storage_{sto.cols['bus'][i]}_{i}")
    used = np.zeros(n_sub, dtype=dt_int)

    def place(subs):
        pos = np.zeros(len(subs), dtype=dt_int)
        for i, s in enumerate(subs.tolist()):
            pos[i] = used[s]
            used[s] += 1
        return pos

    or_sub = row[np.concatenate([fb, hv])].astype(dt_int)
    ex_sub = row[np.concatenate([tb, lv])].astype(dt_int)
    # origin then extremity of each branch, then generators, loads, storage units
    both = place(np.column_stack([or_sub, ex_sub]).reshape(-1)).reshape(-1, 2)
    bk.line_or_to_subid, bk.line_ex_to_subid = or_sub, ex_sub
    bk.line_or_to_sub_pos, bk.line_ex_to_sub_pos = both[:, 0].copy(), both[:, 1].copy()
    bk.gen_to_subid = row[gen.cols["bus"]].astype(dt_int)
    bk.gen_to_sub_pos = place(bk.gen_to_subid)
    bk.load_to_subid = row[load.cols["bus"]].astype(dt_int)
    bk.load_to_sub_pos = place(bk.load_to_subid)
    if bk.n_storage:
        bk.storage_to_subid = row[sto.cols["bus"]].astype(dt_int)
        bk.storage_to_sub_pos = place(bk.storage_to_subid)
    bk.sub_info = used.copy()
    bk.dim_topo = int(used.sum())
    bk.n_shunt = len(sh)
    bk.shunt_to_subid = row[sh.cols["bus"]].astype(dt_int)
    bk.name_shunt = np.array([f"shunt_{sh.cols['bus'][i]}_{i}" for i in range(len(sh))]).astype(str)
    bk._sh_vnkv = world["bus"].cols["vn_kv"][bk.shunt_to_subid].astype(np.float64)  # grid2op's shunt kV
    with np.errstate(divide="ignore", invalid="ignore"):
        bk.thermal_limit_a = (1000.0 * np.concatenate([
            line.cols["max_i_ka"], trafo.cols["sn_mva"] / (SQRT3 * trafo.cols["vn_hv_kv"])])).astype(dt_float)
    bk._compute_pos_big_topo()


def gen_kv(world, gen_to_subid):
    """grid2op's kV / p.u. factor of every generator (float32, as PandaPowerBackend and
    LightSimBackend divide the voltage set-points)."""
    return world["bus"].cols["vn_kv"][gen_to_subid].astype(dt_float)
