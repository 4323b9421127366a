"""The schema registry: every element kind, its columns, dtypes, units, defaults and ranges.

Readers, writers, handles, the journal and snapshots all read this one table; nothing else
decides what a column is.  Names and units are pandapower's.

Each column also says what a write to it *affects* in the solver, which decides how much
the next solve has to rebuild:

- ``"inj"``   injections or set-points only (Sbus, voltage set-points): incremental path;
- ``"adm"``   admittance values, same sparsity pattern: Ybus values refreshed;
- ``"topo"``  connectivity, bus types or in_service: full rebuild;
- ``"none"``  not used by the power flow (names, ratings used only for loading, metadata).

The column definitions (``Column``, ``KindSpec``, the dtypes and the declaration helpers) live in
world/schema_types.py; this module holds the tables and the registry's lookups.
"""
from __future__ import annotations

from types import MappingProxyType

from .schema_types import (  # noqa: F401  (the column definitions, re-exported: import them from here)
    BOOL, F8, I8, NUMPY_DTYPES, STR, Column, KindSpec, _bus, _c, _in_service, _INF, _name, _NANF, _opt, _scaling,
)

SCHEMA_VERSION = 1

_TAP_TYPES = ("Ratio", "Symmetrical", "Ideal", "Tabular")

KINDS: dict[str, KindSpec] = {}

#: a switch's ``et`` code -> the kind its ``element`` refers to (the one switch element-type map)
SWITCH_ET_KIND = MappingProxyType({"b": "bus", "l": "line", "t": "trafo", "t3": "trafo3w"})
#: element kind -> the ``et`` code of a switch on it
SWITCH_ET = MappingProxyType({kind: et for et, kind in SWITCH_ET_KIND.items()})


def _kind(name, *columns, doc=""):
    KINDS[name] = KindSpec(name, tuple(columns), doc)


_kind(
    "bus",
    _name(),
    _c("vn_kv", F8, "kV", lo=0.0, lo_open=True, affects="topo",
       doc="nominal voltage (> 0); a write rebuilds the model (every per-unit base on the bus changes)"),
    _c("type", STR, doc="b (busbar), n (node), m (muff)"),
    _c("zone", STR, doc="zone label"),
    _in_service(),
    _opt("max_vm_pu", "p.u."),
    _opt("min_vm_pu", "p.u."),
    doc="nodes of the network",
)
_kind(
    "line",
    _name(),
    _c("std_type", STR),
    _bus("from_bus"),
    _bus("to_bus"),
    _c("length_km", F8, "km", lo=0.0, affects="adm"),
    _c("r_ohm_per_km", F8, "ohm/km", affects="adm", doc="may be negative in network equivalents (PEGASE)"),
    _c("x_ohm_per_km", F8, "ohm/km", affects="adm"),
    _c("c_nf_per_km", F8, "nF/km", default=0.0, affects="adm"),
    _c("g_us_per_km", F8, "uS/km", default=0.0, affects="adm"),
    _c("max_i_ka", F8, "kA", default=_INF, lo=0.0, nan_ok=True, doc="thermal limit, for loading_percent (NaN: no limit known, loading NaN as in pandapower)"),
    _c("df", F8, "", default=1.0, lo=0.0, hi=1.0, doc="derating factor of max_i_ka"),
    _c("parallel", I8, "", default=1, lo=1, affects="adm", doc="number of parallel systems"),
    _c("type", STR, doc="ol (overhead) or cs (cable)"),
    _in_service(),
    _opt("max_loading_percent", "%"),
    doc="pi-model lines",
)
_kind(
    "trafo",
    _name(),
    _c("std_type", STR),
    _bus("hv_bus"),
    _bus("lv_bus"),
    _c("sn_mva", F8, "MVA", lo=0.0, affects="adm"),
    _c("vn_hv_kv", F8, "kV", lo=0.0, affects="adm"),
    _c("vn_lv_kv", F8, "kV", lo=0.0, affects="adm"),
    _c("vk_percent", F8, "%", affects="adm", doc="may be negative in network equivalents"),
    _c("vkr_percent", F8, "%", affects="adm", doc="may be negative in network equivalents"),
    _c("pfe_kw", F8, "kW", default=0.0, affects="adm"),
    _c("i0_percent", F8, "%", default=0.0, affects="adm"),
    _c("shift_degree", F8, "degree", default=0.0, affects="adm"),
    _c("tap_side", STR, choices=("hv", "lv"), affects="adm"),
    _c("tap_neutral", F8, "", default=_NANF, nan_ok=True, affects="adm"),
    _c("tap_min", F8, "", default=_NANF, nan_ok=True),
    _c("tap_max", F8, "", default=_NANF, nan_ok=True),
    _c("tap_step_percent", F8, "%", default=_NANF, nan_ok=True, affects="adm"),
    _c("tap_step_degree", F8, "degree", default=_NANF, nan_ok=True, affects="adm"),
    _c("tap_pos", F8, "", default=_NANF, nan_ok=True, affects="adm"),
    _c("tap_changer_type", STR, choices=_TAP_TYPES, affects="adm",
       doc="Ratio, Symmetrical (phase shifter), Ideal; pandapower 2's tap_phase_shifter=True reads as Ideal"),
    _c("parallel", I8, "", default=1, lo=1, affects="adm"),
    _c("df", F8, "", default=1.0, lo=0.0, hi=1.0),
    _in_service(),
    _opt("max_loading_percent", "%"),
    doc="two-winding transformers",
)
_kind(
    "trafo3w",
    _name(),
    _c("std_type", STR),
    _bus("hv_bus"),
    _bus("mv_bus"),
    _bus("lv_bus"),
    *[_c(f"sn_{s}_mva", F8, "MVA", lo=0.0, affects="adm") for s in ("hv", "mv", "lv")],
    *[_c(f"vn_{s}_kv", F8, "kV", lo=0.0, affects="adm") for s in ("hv", "mv", "lv")],
    *[_c(f"vk_{s}_percent", F8, "%", affects="adm") for s in ("hv", "mv", "lv")],
    *[_c(f"vkr_{s}_percent", F8, "%", affects="adm") for s in ("hv", "mv", "lv")],
    _c("pfe_kw", F8, "kW", default=0.0, affects="adm"),
    _c("i0_percent", F8, "%", default=0.0, affects="adm"),
    _c("shift_mv_degree", F8, "degree", default=0.0, affects="adm"),
    _c("shift_lv_degree", F8, "degree", default=0.0, affects="adm"),
    _c("tap_side", STR, choices=("hv", "mv", "lv"), affects="adm"),
    _c("tap_neutral", F8, "", default=_NANF, nan_ok=True, affects="adm"),
    _c("tap_min", F8, "", default=_NANF, nan_ok=True),
    _c("tap_max", F8, "", default=_NANF, nan_ok=True),
    _c("tap_step_percent", F8, "%", default=_NANF, nan_ok=True, affects="adm"),
    _c("tap_step_degree", F8, "degree", default=_NANF, nan_ok=True, affects="adm"),
    _c("tap_pos", F8, "", default=_NANF, nan_ok=True, affects="adm"),
    _c("tap_at_star_point", BOOL, default=False, affects="adm"),
    _c("tap_changer_type", STR, choices=_TAP_TYPES, affects="adm"),
    _in_service(),
    _opt("max_loading_percent", "%"),
    doc="three-winding transformers (three branches around an internal star bus)",
)
_kind(
    "load",
    _name(),
    _bus(),
    _c("p_mw", F8, "MW", affects="inj"),
    _c("q_mvar", F8, "MVAr", default=0.0, affects="inj"),
    _c("const_z_p_percent", F8, "%", default=0.0, lo=0.0, hi=100.0, affects="inj"),
    _c("const_i_p_percent", F8, "%", default=0.0, lo=0.0, hi=100.0, affects="inj"),
    _c("const_z_q_percent", F8, "%", default=0.0, lo=0.0, hi=100.0, affects="inj"),
    _c("const_i_q_percent", F8, "%", default=0.0, lo=0.0, hi=100.0, affects="inj"),
    _c("sn_mva", F8, "MVA", default=_NANF, nan_ok=True),
    _scaling(),
    _in_service(),
    _c("type", STR),
    _c("controllable", BOOL, default=False),
    _opt("max_p_mw", "MW"), _opt("min_p_mw", "MW"), _opt("max_q_mvar", "MVAr"), _opt("min_q_mvar", "MVAr"),
    doc="consumers (positive p_mw consumes)",
)
_kind(
    "sgen",
    _name(),
    _bus(),
    _c("p_mw", F8, "MW", affects="inj"),
    _c("q_mvar", F8, "MVAr", default=0.0, affects="inj"),
    _c("sn_mva", F8, "MVA", default=_NANF, nan_ok=True),
    _scaling(),
    _in_service(),
    _c("type", STR),
    _c("current_source", BOOL, default=True),
    _c("controllable", BOOL, default=False),
    _opt("max_p_mw", "MW"), _opt("min_p_mw", "MW"), _opt("max_q_mvar", "MVAr"), _opt("min_q_mvar", "MVAr"),
    doc="static generators (PQ injections, positive p_mw generates)",
)
_kind(
    "gen",
    _name(),
    _bus(),
    _c("p_mw", F8, "MW", affects="inj"),
    _c("vm_pu", F8, "p.u.", default=1.0, lo=0.0, lo_open=True, affects="inj"),
    _c("sn_mva", F8, "MVA", default=_NANF, nan_ok=True),
    _c("min_q_mvar", F8, "MVAr", default=-_INF, nan_ok=True, affects="inj"),
    _c("max_q_mvar", F8, "MVAr", default=_INF, nan_ok=True, affects="inj"),
    _scaling(),
    _c("slack", BOOL, default=False, affects="topo"),
    _c("slack_weight", F8, "", default=0.0, affects="inj"),
    _in_service(),
    _c("type", STR),
    _c("controllable", BOOL, default=True),
    _opt("max_p_mw", "MW"), _opt("min_p_mw", "MW"),
    doc="voltage-controlled generators (PV, or slack with slack=True)",
)
_kind(
    "ext_grid",
    _name(),
    _bus(),
    _c("vm_pu", F8, "p.u.", default=1.0, lo=0.0, lo_open=True, affects="inj"),
    _c("va_degree", F8, "degree", default=0.0, affects="inj"),
    _c("slack_weight", F8, "", default=1.0, affects="inj"),
    _in_service(),
    _c("controllable", BOOL, default=False),
    _opt("max_p_mw", "MW"), _opt("min_p_mw", "MW"), _opt("max_q_mvar", "MVAr"), _opt("min_q_mvar", "MVAr"),
    doc="external grids (slack)",
)
_kind(
    "shunt",
    _name(),
    _bus(),
    _c("p_mw", F8, "MW", default=0.0, affects="adm"),
    _c("q_mvar", F8, "MVAr", affects="adm"),
    _c("vn_kv", F8, "kV", lo=0.0, affects="adm"),
    _c("step", F8, "", default=1.0, lo=0.0, affects="adm"),
    _c("max_step", I8, "", default=1, lo=1),
    _in_service(),
    doc="shunt admittances given as power at vn_kv, per step",
)
_kind(
    "storage",
    _name(),
    _bus(),
    _c("p_mw", F8, "MW", affects="inj"),
    _c("q_mvar", F8, "MVAr", default=0.0, affects="inj"),
    _c("sn_mva", F8, "MVA", default=_NANF, nan_ok=True),
    _c("soc_percent", F8, "%", default=_NANF, nan_ok=True),
    _c("min_e_mwh", F8, "MWh", default=0.0),
    _c("max_e_mwh", F8, "MWh", default=_NANF, nan_ok=True),
    _scaling(),
    _in_service(),
    _c("type", STR),
    _c("controllable", BOOL, default=False),
    _opt("max_p_mw", "MW"), _opt("min_p_mw", "MW"), _opt("max_q_mvar", "MVAr"), _opt("min_q_mvar", "MVAr"),
    doc="storage units (positive p_mw charges, as a load)",
)
_kind(
    "switch",
    _name(),
    _bus(),
    _c("element", I8, lo=0, affects="topo", doc="bus id (et='b') or line/trafo/trafo3w id"),
    _c("et", STR, choices=tuple(SWITCH_ET_KIND), affects="topo"),
    _c("type", STR),
    _c("closed", BOOL, default=True, affects="topo"),
    _c("z_ohm", F8, "ohm", default=0.0, lo=0.0, affects="topo"),
    _c("in_ka", F8, "kA", default=_NANF, nan_ok=True),
    doc="bus-bus (et='b') and bus-branch switches",
)
_kind(
    "ward",
    _name(),
    _bus(),
    _c("ps_mw", F8, "MW", affects="inj"),
    _c("qs_mvar", F8, "MVAr", affects="inj"),
    _c("pz_mw", F8, "MW", affects="adm"),
    _c("qz_mvar", F8, "MVAr", affects="adm"),
    _in_service(),
    doc="ward equivalents: constant power plus constant impedance",
)
_kind(
    "xward",
    _name(),
    _bus(),
    _c("ps_mw", F8, "MW", affects="inj"),
    _c("qs_mvar", F8, "MVAr", affects="inj"),
    _c("pz_mw", F8, "MW", affects="adm"),
    _c("qz_mvar", F8, "MVAr", affects="adm"),
    _c("r_ohm", F8, "ohm", affects="adm"),
    _c("x_ohm", F8, "ohm", affects="adm"),
    _c("vm_pu", F8, "p.u.", lo=0.0, lo_open=True, affects="inj"),
    _c("slack_weight", F8, "", default=0.0),
    _in_service(),
    doc="extended wards: ward plus an internal voltage source behind an impedance",
)
_kind(
    "impedance",
    _name(),
    _bus("from_bus"),
    _bus("to_bus"),
    _c("rft_pu", F8, "p.u.", affects="adm"),
    _c("xft_pu", F8, "p.u.", affects="adm"),
    _c("rtf_pu", F8, "p.u.", affects="adm"),
    _c("xtf_pu", F8, "p.u.", affects="adm"),
    _c("gf_pu", F8, "p.u.", default=0.0, affects="adm"),
    _c("bf_pu", F8, "p.u.", default=0.0, affects="adm"),
    _c("gt_pu", F8, "p.u.", default=0.0, affects="adm"),
    _c("bt_pu", F8, "p.u.", default=0.0, affects="adm"),
    _c("sn_mva", F8, "MVA", lo=0.0, affects="adm"),
    _in_service(),
    doc="per-unit series impedances (possibly asymmetric) with optional shunts",
)

# --- pandapower's characteristic tables: rows of data the elements refer to by id -------------
_kind(
    "trafo_characteristic_table",
    _c("id_characteristic", I8, lo=0, affects="adm", doc="the id trafo / trafo3w id_characteristic_table refer to"),
    _c("step", F8, affects="adm", doc="tap position the row holds"),
    *(_c(c, F8, u, default=_NANF, nan_ok=True, affects="adm")
      for c, u in (("voltage_ratio", ""), ("angle_deg", "degree"), ("vk_percent", "%"), ("vkr_percent", "%"),
                   ("vk_hv_percent", "%"), ("vkr_hv_percent", "%"), ("vk_mv_percent", "%"), ("vkr_mv_percent", "%"),
                   ("vk_lv_percent", "%"), ("vkr_lv_percent", "%"))),
    doc="tap-dependent ratio, angle and short-circuit voltages (trafo / trafo3w with tap_dependency_table)",
)
_kind(
    "shunt_characteristic_table",
    _c("id_characteristic", I8, lo=0, affects="adm", doc="the id shunt id_characteristic_table refers to"),
    _c("step", F8, affects="adm"),
    _c("q_mvar", F8, "MVAr", default=_NANF, nan_ok=True, affects="adm", doc="total at this step"),
    _c("p_mw", F8, "MW", default=_NANF, nan_ok=True, affects="adm", doc="total at this step"),
    doc="step-dependent shunt powers (shunts with step_dependency_table)",
)
_kind(
    "q_capability_curve_table",
    _c("id_q_capability_curve", I8, lo=0, affects="inj",
       doc="the id gen / sgen id_q_capability_characteristic refer to"),
    _c("p_mw", F8, "MW", affects="inj"),
    _c("q_min_mvar", F8, "MVAr", affects="inj"),
    _c("q_max_mvar", F8, "MVAr", affects="inj"),
    doc="reactive capability curves: Q limits against P (gen / sgen with reactive_capability_curve)",
)

#: kinds in a dependency-safe order (buses first)
KIND_ORDER = tuple(KINDS)

#: kind -> its columns that refer to a bus (``ref="bus"``), for the kinds that have any
BUS_REFS = MappingProxyType({k: tuple(c.name for c in s.columns if c.ref == "bus")
                             for k, s in KINDS.items() if any(c.ref == "bus" for c in s.columns)})

#: tables pandapower nets carry that take no part in the power flow; readers skip them
IGNORED_TABLES = frozenset({
    "measurement", "pwl_cost", "poly_cost", "controller", "group", "characteristic", "bus_geodata",
    "line_geodata", "q_capability_characteristic", "std_types", "user_pf_options",
})

#: pandapower element tables gridtape does not model; a non-empty one is an error
UNSUPPORTED_TABLES = frozenset({
    "bus_dc", "line_dc", "motor", "asymmetric_load", "asymmetric_sgen", "dcline", "svc", "ssc", "vsc",
    "tcsc", "source_dc", "load_dc", "vsc_stacked", "vsc_bipolar",
})


def spec(kind: str) -> KindSpec:
    """The KindSpec of ``kind``; SchemaError for an unknown kind."""
    try:
        return KINDS[kind]
    except KeyError:
        from gridtape.errors import SchemaError

        raise SchemaError(f"unknown element kind {kind!r}; known: {', '.join(KINDS)}", table=kind) from None


def fingerprint() -> str:
    """A short hash of the whole registry: changes whenever a kind, column, dtype or default changes."""
    import hashlib

    h = hashlib.sha256()
    for kind in KINDS.values():
        for c in kind.columns:
            h.update(f"{kind.name}.{c.name}:{c.dtype}:{c.unit}:{c.default!r}:{c.affects};".encode())
    return h.hexdigest()[:16]
