"""Native reader of MATPOWER ``.m`` case files (format version 2), converted to a World the way
pandapower's ``converter.from_mpc`` / ``from_ppc`` converts a case:

- buses: id = BUS_I - 1, vn_kv = BASE_KV, zone = ZONE, out of service when BUS_TYPE == 4,
  max/min_vm_pu = VMAX/VMIN, type "b";
- loads from PD/QD where PD > 0 or (PD == 0 and QD != 0); a negative PD becomes an sgen
  (p = -PD, q = -QD, type "");
- shunts from GS/BS (p_mw = GS, q_mvar = -BS at the bus voltage);
- the gen table: the first generator at a reference bus (type 3) becomes an ext_grid, the first
  at a PV bus (type 2) a gen, any further one at a type 1-3 bus an sgen (controllable); gens at
  isolated buses are dropped;
- branches: a line (length 1 km, ohm values from the to-bus base impedance) when both ends have
  the same base kV, TAP is 0 or 1 and SHIFT is 0; a transformer when TAP is not 0/1 or SHIFT is
  non-zero (hv side = higher base kV, vk/vkr from R/X at RATE_A (99999 MVA when 0), i0 from the
  line charging, tap_pos = sign(ratio - 1), tap_step_percent = |ratio - 1| * 100); otherwise (a
  plain branch between different base voltages) an impedance in per unit of RATE_A.

gencost, bus_name / gen_name / branch_name (used as names), areas and any other fields are
accepted; only bus, gen, branch and baseMVA are required.

The text is parsed by world/matpower_parse.py; ``.m`` files are written by world/matpower_write.py
(``format_matpower`` / ``write_matpower``, importable from here as before).
"""
from __future__ import annotations

import math
import os

import numpy as np

from gridtape.errors import CaseError

from .matpower_parse import parse_matpower
from .matpower_write import format_matpower, write_matpower  # noqa: F401  (the writer, re-exported)
from .world import World, world_from_frames

# MATPOWER column indices (0-based)
BUS_I, BUS_TYPE, PD, QD, GS, BS, BUS_AREA, VM, VA, BASE_KV, ZONE, VMAX, VMIN = range(13)
GEN_BUS, PG, QG, QMAX, QMIN, VG, MBASE, GEN_STATUS, PMAX, PMIN = range(10)
F_BUS, T_BUS, BR_R, BR_X, BR_B, RATE_A, RATE_B, RATE_C, TAP, SHIFT, BR_STATUS = range(11)

_MIN_COLS = {"bus": VMIN + 1, "gen": PMIN + 1, "branch": BR_STATUS + 1}
_MAX_VAL = 99999.0


# ------------------------------------------------------------------------------------------------
# conversion
# ------------------------------------------------------------------------------------------------
def read_matpower(path, *, f_hz=50.0) -> World:
    """A World from a MATPOWER ``.m`` case file, converted as ``pandapower.converter.from_mpc``
    converts it.  CaseError when the file is missing, unparsable, or lacks bus/gen/branch/baseMVA."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise CaseError("case file does not exist", file=path)
    if os.path.isdir(path):
        raise CaseError("is a directory, not a MATPOWER file", file=path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except (OSError, ValueError) as e:
        raise CaseError(f"cannot read: {getattr(e, 'strerror', None) or e}", file=path) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")  # Octave / MATLAB files of older tools: every byte kept as is
    if "\x00" in text:
        raise CaseError("binary data in a MATPOWER text file (NUL byte; a .mat file is not read here)",
                        file=path, line=text.count("\n", 0, text.index("\x00")) + 1)
    mpc = parse_matpower(text, file=path)
    name = os.path.splitext(os.path.basename(path))[0]
    return world_from_mpc(mpc, f_hz=f_hz, file=path, name=name)


def world_from_mpc(mpc: dict, *, f_hz=50.0, file=None, name="") -> World:
    """A World from MATPOWER data (1-based bus numbers, TAP 0 meaning no transformer), as
    parsed by :func:`parse_matpower`."""
    version = str(mpc.get("version", "2")).strip()
    if version not in ("2", "2.0"):
        raise CaseError(f"MATPOWER case format version {version!r} is not supported (only 2)", file=file,
                        field="version")
    if "baseMVA" not in mpc:
        raise CaseError("MATPOWER case has no mpc.baseMVA", file=file, field="baseMVA")
    try:
        base_mva = float(mpc["baseMVA"])
    except (TypeError, ValueError):
        raise CaseError(f"mpc.baseMVA is not a number: {mpc['baseMVA']!r}", file=file, field="baseMVA") from None
    if not (base_mva > 0 and math.isfinite(base_mva)):
        raise CaseError(f"mpc.baseMVA must be positive: {base_mva!r}", file=file, field="baseMVA")
    arrays = {}
    for key in ("bus", "gen", "branch"):
        if key not in mpc:
            raise CaseError(f"MATPOWER case has no mpc.{key}", file=file, table=key)
        try:
            a = np.asarray(mpc[key], dtype=float)
        except (TypeError, ValueError, OverflowError):
            raise CaseError(f"mpc.{key} is not a numeric matrix", file=file, table=key) from None
        if a.ndim == 0:
            raise CaseError(f"mpc.{key} is a scalar, not a matrix", file=file, table=key)
        if a.ndim > 2:
            raise CaseError(f"mpc.{key} has {a.ndim} dimensions, not 2", file=file, table=key)
        if a.ndim == 1:
            a = a.reshape(1, -1) if a.size else a.reshape(0, _MIN_COLS[key])
        if a.size == 0:
            a = np.zeros((0, max(a.shape[1] if a.ndim == 2 else 0, _MIN_COLS[key])))
        if a.shape[1] < _MIN_COLS[key]:
            raise CaseError(f"mpc.{key} has {a.shape[1]} columns, at least {_MIN_COLS[key]} are needed", file=file,
                            table=key)
        arrays[key] = a.copy()
    if not len(arrays["bus"]):
        raise CaseError("MATPOWER case has no buses", file=file, table="bus")
    _check_matrices(arrays, file)
    with np.errstate(all="ignore"):  # a zero base kV or rating gives inf / NaN, refused by the schema
        frames = _convert(arrays["bus"], arrays["gen"], arrays["branch"], base_mva, float(f_hz), mpc, file)
    return world_from_frames(frames, sn_mva=base_mva, f_hz=float(f_hz), name=name, file=file)


#: (matrix, column, name): columns that must hold integers (bus numbers, types, status flags)
_INTEGRAL = (("bus", BUS_I, "BUS_I"), ("bus", BUS_TYPE, "BUS_TYPE"), ("gen", GEN_BUS, "GEN_BUS"),
             ("branch", F_BUS, "F_BUS"), ("branch", T_BUS, "T_BUS"))
#: (matrix, column, name): columns that must be finite numbers
_FINITE = (("bus", BASE_KV, "BASE_KV"), ("gen", GEN_STATUS, "GEN_STATUS"), ("branch", BR_STATUS, "BR_STATUS"),
           ("branch", TAP, "TAP"), ("branch", SHIFT, "SHIFT"), ("bus", PD, "PD"), ("bus", QD, "QD"),
           ("bus", GS, "GS"), ("bus", BS, "BS"))


def _check_matrices(arrays, file):
    """What the conversion relies on, checked before anything is converted: integral bus numbers
    (>= 1, unique is checked later), bus types 1-4, finite base kV > 0, finite status / tap / shift /
    demand values.  CaseError naming the matrix, its 1-based row and the MATPOWER column."""
    def bad(key, rows, name, why):
        r = int(rows[0])
        raise CaseError(f"mpc.{key} row {r + 1}, column {name}: {why}: {arrays[key][r, _col[name]]!r}", file=file,
                        table=key, row=r + 1, field=name)

    _col = {name: c for _, c, name in _INTEGRAL + _FINITE}
    for key, c, name in _INTEGRAL:
        v = arrays[key][:, c]
        wrong = ~np.isfinite(v) | (v != np.round(v)) | (np.abs(v) >= 2.0 ** 53)
        if wrong.any():
            bad(key, np.flatnonzero(wrong), name, "not an integer")
    for key, c, name in _FINITE:
        v = arrays[key][:, c]
        if not np.isfinite(v).all():
            bad(key, np.flatnonzero(~np.isfinite(v)), name, "not a finite number")
    bus = arrays["bus"]
    low = bus[:, BUS_I] < 1
    if low.any():
        bad("bus", np.flatnonzero(low), "BUS_I", "bus numbers start at 1")
    types = ~np.isin(bus[:, BUS_TYPE], (1, 2, 3, 4))
    if types.any():
        bad("bus", np.flatnonzero(types), "BUS_TYPE", "bus type must be 1 (PQ), 2 (PV), 3 (reference) or 4 "
                                                     "(isolated)")
    kv = bus[:, BASE_KV] <= 0
    if kv.any():
        bad("bus", np.flatnonzero(kv), "BASE_KV", "base kV must be > 0")


def _names(mpc, key, n):
    v = mpc.get(key)
    if isinstance(v, list) and len(v) == n:
        return np.array(v, dtype=object)
    return np.full(n, None, dtype=object)


def _convert(bus, gen, branch, base_mva, f_hz, mpc, file):
    import pandas as pd

    bus[:, BUS_I] -= 1
    branch[:, F_BUS] -= 1
    branch[:, T_BUS] -= 1
    gen[:, GEN_BUS] -= 1
    branch[branch[:, TAP] == 0, TAP] = 1

    nb = len(bus)
    bus_ids = bus[:, BUS_I].astype(np.int64)
    if len(np.unique(bus_ids)) != nb:
        dup = bus_ids[np.flatnonzero(np.diff(np.sort(bus_ids)) == 0)[0]]
        raise CaseError(f"bus number {int(dup) + 1} appears twice", file=file, table="bus", row=int(dup) + 1)
    pos_of = {int(b): i for i, b in enumerate(bus_ids.tolist())}

    def positions(numbers, table, field):
        out = np.empty(len(numbers), dtype=np.int64)
        for i, b in enumerate(numbers.tolist()):
            p = pos_of.get(int(b)) if math.isfinite(b) and b == int(b) else None
            if p is None:
                from gridtape.errors import BadReferenceError

                raise BadReferenceError(f"refers to missing bus {b + 1:g}", file=file, table=table, row=i + 1,
                                        field=field)
            out[i] = p
        return out

    frames = {}
    vn = bus[:, BASE_KV]
    # --- buses -------------------------------------------------------------------------------
    frames["bus"] = pd.DataFrame({
        "name": _names(mpc, "bus_name", nb),
        "vn_kv": vn,
        "type": np.full(nb, "b", dtype=object),
        "zone": _obj(bus[:, ZONE]),
        "in_service": bus[:, BUS_TYPE] != 4,
        "max_vm_pu": bus[:, VMAX],
        "min_vm_pu": bus[:, VMIN],
    }, index=bus_ids)
    # --- loads, bus sgens, shunts ------------------------------------------------------------
    pd_, qd = bus[:, PD], bus[:, QD]
    is_load = (pd_ > 0) | ((pd_ == 0) & (qd != 0))
    frames["load"] = pd.DataFrame({
        "bus": bus_ids[is_load], "p_mw": pd_[is_load], "q_mvar": qd[is_load],
        "type": np.full(int(is_load.sum()), "wye", dtype=object), "controllable": False,
    }, index=np.arange(int(is_load.sum()), dtype=np.int64))
    is_bsgen = pd_ < 0
    sgen_parts = [pd.DataFrame({
        "bus": bus_ids[is_bsgen], "p_mw": -pd_[is_bsgen], "q_mvar": -qd[is_bsgen],
        "type": np.full(int(is_bsgen.sum()), "", dtype=object), "controllable": False, "in_service": True,
    })]
    is_shunt = (bus[:, GS] != 0) | (bus[:, BS] != 0)
    frames["shunt"] = pd.DataFrame({
        "bus": bus_ids[is_shunt], "p_mw": bus[is_shunt, GS], "q_mvar": -bus[is_shunt, BS],
        "vn_kv": vn[is_shunt], "step": 1.0, "max_step": 1,
    }, index=np.arange(int(is_shunt.sum()), dtype=np.int64))
    # --- generators --------------------------------------------------------------------------
    ng = len(gen)
    gpos = positions(gen[:, GEN_BUS], "gen", "GEN_BUS")
    gtype = bus[gpos, BUS_TYPE].astype(np.int64)
    first = np.zeros(ng, dtype=bool)
    seen = set()
    for i, b in enumerate(gpos.tolist()):
        if b not in seen:
            first[i] = True
            seen.add(b)
    is_eg = (gtype == 3) & first
    is_gen = (gtype == 2) & first
    is_gsgen = ~(is_eg | is_gen) & np.isin(gtype, (1, 2, 3))
    gen_names = _names(mpc, "gen_name", ng)
    on = gen[:, GEN_STATUS] > 0
    gbus = bus_ids[gpos]
    frames["ext_grid"] = pd.DataFrame({
        "name": gen_names[is_eg], "bus": gbus[is_eg], "vm_pu": gen[is_eg, VG], "va_degree": bus[gpos[is_eg], VA],
        "in_service": on[is_eg], "max_p_mw": gen[is_eg, PMAX], "min_p_mw": gen[is_eg, PMIN],
        "max_q_mvar": gen[is_eg, QMAX], "min_q_mvar": gen[is_eg, QMIN],
    }, index=np.arange(int(is_eg.sum()), dtype=np.int64))
    frames["gen"] = pd.DataFrame({
        "name": gen_names[is_gen], "bus": gbus[is_gen], "p_mw": gen[is_gen, PG], "vm_pu": gen[is_gen, VG],
        "sn_mva": gen[is_gen, MBASE], "in_service": on[is_gen], "controllable": True,
        "max_p_mw": gen[is_gen, PMAX], "min_p_mw": gen[is_gen, PMIN],
        "max_q_mvar": gen[is_gen, QMAX], "min_q_mvar": gen[is_gen, QMIN],
    }, index=np.arange(int(is_gen.sum()), dtype=np.int64))
    sgen_parts.append(pd.DataFrame({
        "name": gen_names[is_gsgen], "bus": gbus[is_gsgen], "p_mw": gen[is_gsgen, PG], "q_mvar": gen[is_gsgen, QG],
        "sn_mva": gen[is_gsgen, MBASE], "type": np.full(int(is_gsgen.sum()), "", dtype=object),
        "in_service": on[is_gsgen], "max_p_mw": gen[is_gsgen, PMAX], "min_p_mw": gen[is_gsgen, PMIN],
        "max_q_mvar": gen[is_gsgen, QMAX], "min_q_mvar": gen[is_gsgen, QMIN], "controllable": True,
    }))
    sgen = pd.concat(sgen_parts, ignore_index=True) if (is_bsgen.any() or is_gsgen.any()) else sgen_parts[0]
    sgen.index = np.arange(len(sgen), dtype=np.int64)
    frames["sgen"] = sgen
    # --- branches ----------------------------------------------------------------------------
    nbr = len(branch)
    fpos = positions(branch[:, F_BUS], "branch", "F_BUS")
    tpos = positions(branch[:, T_BUS], "branch", "T_BUS")
    from_vn, to_vn = vn[fpos], vn[tpos]
    tap, shift = branch[:, TAP], branch[:, SHIFT]
    is_line = (from_vn == to_vn) & ((tap == 0) | (tap == 1)) & (shift == 0)
    is_trafo = ((tap != 0) & (tap != 1)) | (shift != 0)
    is_imp = ~is_line & ~is_trafo
    br_names = _names(mpc, "branch_name", nbr)
    br_on = branch[:, BR_STATUS].astype(bool)
    br_g = np.zeros(nbr)
    omega = math.pi * f_hz

    # lines: ohm values from the to-bus base impedance, 1 km long
    zni = to_vn ** 2 / base_mva
    max_i_ka = branch[:, RATE_A] / to_vn / np.sqrt(3)
    max_i_ka[np.isclose(max_i_ka, 0)] = _MAX_VAL
    L = is_line
    frames["line"] = pd.DataFrame({
        "name": br_names[L], "from_bus": bus_ids[fpos[L]], "to_bus": bus_ids[tpos[L]], "length_km": 1.0,
        "r_ohm_per_km": branch[L, BR_R] * zni[L], "x_ohm_per_km": branch[L, BR_X] * zni[L],
        "c_nf_per_km": branch[L, BR_B] / zni[L] / omega * 1e9 / 2, "g_us_per_km": br_g[L] / zni[L] * 1e6 / 2,
        "max_i_ka": max_i_ka[L], "type": np.full(int(L.sum()), "ol", dtype=object),
        "max_loading_percent": 100.0, "in_service": br_on[L],
    }, index=np.arange(int(L.sum()), dtype=np.int64))

    # transformers
    T = is_trafo
    nt = int(T.sum())
    hv, lv = fpos[T].copy(), tpos[T].copy()
    vn_hv, vn_lv = from_vn[T].copy(), to_vn[T].copy()
    swap = ~(to_vn[T] <= from_vn[T])
    hv[swap], lv[swap] = tpos[T][swap], fpos[T][swap]
    vn_hv[swap], vn_lv[swap] = to_vn[T][swap], from_vn[T][swap]
    rk, xk = branch[T, BR_R], branch[T, BR_X]
    zk = (rk ** 2 + xk ** 2) ** 0.5
    sn = branch[T, RATE_A].copy()
    sn[np.isclose(sn, 0)] = _MAX_VAL
    ratio = branch[T, TAP].copy()
    nonzero = ~np.isclose(ratio, 0)
    ratio[nonzero] -= 1
    br_b = branch[T, BR_B]
    i0 = np.sqrt(br_b ** 2 + br_g[T] ** 2) * 100 * base_mva / sn
    vk = np.sign(xk) * zk * sn * 100 / base_mva
    vkr = rk * sn * 100 / base_mva
    step = np.abs(ratio) * 100
    frames["trafo"] = pd.DataFrame({
        "name": br_names[T], "hv_bus": bus_ids[hv], "lv_bus": bus_ids[lv], "sn_mva": sn,
        "vn_hv_kv": vn_hv, "vn_lv_kv": vn_lv, "vk_percent": vk, "vkr_percent": vkr,
        "pfe_kw": br_g[T] * base_mva * 1e3, "i0_percent": i0, "shift_degree": branch[T, SHIFT],
        "tap_side": np.full(nt, "hv", dtype=object), "tap_neutral": 0.0, "tap_step_percent": step,
        "tap_pos": np.sign(ratio), "tap_changer_type": _obj(np.where(step > 0, "Ratio", None)),
        "max_loading_percent": 100.0, "in_service": br_on[T],
    }, index=np.arange(nt, dtype=np.int64))

    # impedances: a plain branch between different voltage levels, in p.u. of RATE_A
    Z = is_imp
    sn_z = branch[Z, RATE_A].copy()
    sn_z[np.isclose(sn_z, 0)] = _MAX_VAL
    rft = branch[Z, BR_R] / base_mva * sn_z
    xft = branch[Z, BR_X] / base_mva * sn_z
    bf = branch[Z, BR_B] * base_mva / sn_z / 2
    gf = br_g[Z] * base_mva / sn_z / 2
    zeros = np.zeros(int(Z.sum()))
    frames["impedance"] = pd.DataFrame({
        "name": br_names[Z], "from_bus": bus_ids[fpos[Z]], "to_bus": bus_ids[tpos[Z]],
        "rft_pu": rft, "xft_pu": xft, "rtf_pu": rft + zeros, "xtf_pu": xft + zeros,
        "gf_pu": gf, "bf_pu": bf, "gt_pu": gf + zeros, "bt_pu": bf + zeros, "sn_mva": sn_z,
    }, index=np.arange(int(Z.sum()), dtype=np.int64))
    return {k: v for k, v in frames.items() if len(v)}


def _obj(values):
    arr = np.empty(len(values), dtype=object)
    arr[:] = list(values)
    return arr
