"""pandapower's runpp options as gridtape takes them: the one registry of option names, defaults
and allowed values, used by ``PowerGrid(...)``, ``solve(...)`` and for the options a pandapower
net stores in ``net.user_pf_options``.

Every option is one of three things:

- *modelled*: accepted by name and reproduced (see docs/model-notes.md, "runpp options");
- *numerical*: accepted; it changes how pandapower computes, not what (``numba``,
  ``lightsim2grid``, ...), so gridtape takes it and does nothing with it;
- *default only*: accepted at runpp's default value, refused at any other (``only_v_results``,
  ``run_control``, the thermal power flow ``tdpf``);
- anything else: refused with :class:`gridtape.errors.OptionError` naming it (other algorithms,
  ...).

A bad value of a modelled option is an OptionError too.
"""
from __future__ import annotations

import math

from gridtape import errors as _errors


def option_error(message, name):
    """The OptionError naming option ``name``."""
    return _option_error(message, name)


def _option_error(message, name):
    cls = getattr(_errors, "OptionError", None)
    if cls is None:  # before gridtape.errors has it (a SchemaError until then)
        cls = _LocalOptionError
    return cls(message, option=name)


class _LocalOptionError(_errors.SchemaError):
    def __init__(self, message, *, option=None):
        super().__init__(message, field=option)
        self.option = option


def _bool(name, v):
    if isinstance(v, bool) or type(v).__name__ == "bool_":
        return bool(v)
    raise _option_error(f"{name} takes True or False, not {v!r}", name)


def _choice(*allowed):
    def check(name, v):
        if isinstance(v, str) and v in allowed:
            return v
        raise _option_error(f"{name} takes one of {', '.join(map(repr, allowed))}, not {v!r}", name)
    return check


def _number(name, v, ok, what):
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise _option_error(f"{name} takes a number, not {v!r}", name) from None
    if not (ok(f) and math.isfinite(f)):
        raise _option_error(f"{name} must be {what}, not {v!r}", name)
    return f


def _positive(name, v):
    return _number(name, v, lambda f: f > 0, "a positive number")


def _non_negative(name, v):
    return _number(name, v, lambda f: f >= 0, "a number >= 0")


def _delta_q(name, v):
    f = _non_negative(name, v)
    if f != 0:
        raise _option_error("delta_q (a widening of the generators' Q limits) other than 0 is not modelled", name)
    return f


def _max_iteration(name, v):
    if v == "auto":
        return 10
    if isinstance(v, bool) or not isinstance(v, (int,)) and type(v).__name__ not in ("int64", "int32"):
        raise _option_error(f"{name} takes a positive integer or 'auto', not {v!r}", name)
    if int(v) < 1:
        raise _option_error(f"{name} must be >= 1, not {v!r}", name)
    return int(v)


def _angles(name, v):
    if v == "auto":
        return "auto"
    return _bool(name, v)


def _enforce_q_lims(name, v):
    if v == 2:  # pandapower's "one violation at a time"
        raise _option_error("enforce_q_lims=2 (fix the largest violation only) is not modelled; use True", name)
    return _bool(name, v)


def _algorithm(name, v):
    if v in ("nr", "iwamoto_nr", "dc"):
        return v
    raise _option_error(f"algorithm {v!r} is not modelled; gridtape solves with 'nr', 'iwamoto_nr' or 'dc'", name)


def _init(name, v):
    if v in ("auto", "flat", "dc", "results"):
        return v
    raise _option_error(f"init takes 'auto', 'flat', 'dc' or 'results', not {v!r}", name)


#: option name -> (default, check): what gridtape models, with pandapower's runpp defaults
MODELLED = {
    "algorithm": ("nr", _algorithm),
    "calculate_voltage_angles": (True, _angles),
    "init": ("auto", _init),
    "max_iteration": (10, _max_iteration),
    "tolerance_mva": (1e-8, _positive),
    "trafo_model": ("t", _choice("t", "pi")),
    "trafo_loading": ("current", _choice("current", "power")),
    "enforce_p_lims": (False, _bool),
    "enforce_q_lims": (False, _enforce_q_lims),
    "voltage_depend_loads": (True, _bool),
    "consider_line_temperature": (False, _bool),
    "distributed_slack": (False, _bool),
    "trafo3w_losses": ("hv", _choice("hv", "mv", "lv", "star")),
    "switch_rx_ratio": (2.0, _non_negative),
    "neglect_open_switch_branches": (False, _bool),
    "delta_q": (0.0, _delta_q),
    "check_connectivity": (True, _bool),
}

#: options that change how pandapower computes, not the result: accepted and ignored
NUMERICAL = frozenset({"numba", "lightsim2grid", "recycle", "use_umfpack", "permc_spec",
                       "v_debug"})

#: options accepted at runpp's default value only (which changes nothing); any other value is
#: refused by name: ``only_v_results`` (pandapower then fills only part of the result tables),
#: ``run_control`` (controllers), the thermal power flow ``tdpf`` and its ``tdpf_delay_s``
DEFAULT_ONLY = {"only_v_results": False, "run_control": False, "tdpf": False, "tdpf_delay_s": None}

#: options that need a rebuilt model (admittances, topology) when they change
MODEL_OPTIONS = ("trafo_model", "calculate_voltage_angles", "consider_line_temperature", "trafo3w_losses",
                 "switch_rx_ratio", "neglect_open_switch_branches")

#: gridtape's own names of pandapower options
ALIASES = {"qlim": "enforce_q_lims"}


def check(name: str, value):
    """The validated value of option ``name`` (OptionError naming it when it is not modelled or
    the value is not one it takes): an alias (``qlim``) is named as the caller typed it."""
    typed, name = name, ALIASES.get(name, name)
    if name in MODELLED:
        return MODELLED[name][1](typed, value)
    if name in NUMERICAL:
        return value
    if name in DEFAULT_ONLY:
        default = DEFAULT_ONLY[name]
        if value is default or default is False and (value is False or type(value).__name__ == "bool_" and not value):
            return default
        raise _option_error(f"runpp option {name}={value!r} is not modelled by gridtape (only its default "
                            f"{default!r} is; see docs/model-notes.md, 'runpp options')", name)
    raise _option_error(f"runpp option {name!r} is not modelled by gridtape (see docs/model-notes.md, "
                        "'runpp options')", name)


#: the defaults of runpp's own parameters: passing one of them with this value counts, for
#: pandapower, as not passing it (a stored user_pf_option then wins); keyword-only options
#: (trafo3w_losses, switch_rx_ratio, ...) always count as passed
RUNPP_DEFAULTS = {"algorithm": "nr", "calculate_voltage_angles": True, "init": "auto", "max_iteration": "auto",
                  "tolerance_mva": 1e-8, "trafo_model": "t", "trafo_loading": "current", "enforce_p_lims": False,
                  "enforce_q_lims": False, "check_connectivity": True, "voltage_depend_loads": True,
                  "consider_line_temperature": False, "run_control": False, "distributed_slack": False,
                  "tdpf": False, "tdpf_delay_s": None}


def resolve(explicit: dict, stored: dict | None = None, base: dict | None = None) -> dict:
    """The options of one solve: ``base`` (the grid's, default runpp's), then ``stored`` (a net's
    ``user_pf_options``), then ``explicit``; every name checked.  pandapower's rule: a stored
    option applies unless the call passes that option, and passing one of runpp's own parameters
    with its default value does not count as passing it (RUNPP_DEFAULTS)."""
    out = dict(base) if base is not None else {k: v for k, (v, _) in MODELLED.items()}
    stored = {ALIASES.get(k, k): v for k, v in (stored or {}).items()}
    explicit = {ALIASES.get(k, k): v for k, v in explicit.items() if v is not None}
    for name, v in stored.items():
        val = check(name, v)
        if name in MODELLED:
            out[name] = val
    for name, v in explicit.items():
        val = check(name, v)
        if name in stored and name in RUNPP_DEFAULTS and _same(name, val, RUNPP_DEFAULTS[name]):
            continue
        if name in MODELLED:
            out[name] = val
    return out


#: rundcpp's own parameters (with their defaults): the only options its DC power flow takes
RUNDCPP = ("trafo_model", "trafo_loading", "check_connectivity", "switch_rx_ratio", "trafo3w_losses")


def dc_options(explicit: dict) -> dict:
    """The options of a DC solve (``algorithm="dc"``) as ``rundcpp`` takes them: rundcpp reads no
    ``net.user_pf_options`` and none of runpp's other parameters, so only the options passed
    explicitly (``explicit``: the grid's and the solve's) count, and of those only rundcpp's own
    parameters (RUNDCPP); the rest keep runpp's defaults (voltage angles are always calculated:
    voltage_angles()).  ``distributed_slack`` is kept, to be refused by name.  Every name is
    checked as in resolve()."""
    out = {k: v for k, (v, _) in MODELLED.items()}
    for name, v in explicit.items():
        name = ALIASES.get(name, name)
        if v is None:
            continue
        val = check(name, v)
        if name in RUNDCPP or name == "distributed_slack":
            out[name] = val
    out["algorithm"] = "dc"
    return out


def _same(name, value, default):
    """Whether a checked ``value`` is runpp's default of ``name``."""
    if name in MODELLED and default is not None:
        default = check(name, default)
    try:
        return bool(value == default)
    except (TypeError, ValueError):
        return False


def voltage_angles(value, world, algorithm="nr") -> bool:
    """``calculate_voltage_angles`` as runpp decides it.  "auto" is True when a bus above 70 kV
    is both a from-end and a to-end of lines; pandapower tests "any bus above 70 kV" as ``any``
    of their row positions, so a network whose only such bus is the first row reads False.
    The DC power flow (``algorithm="dc"``) always calculates them: rundcpp ignores the option,
    passed or stored."""
    if algorithm == "dc":
        return True
    if value != "auto":
        return bool(value)
    import numpy as np

    bus, line = world["bus"], world["line"]
    pos = np.flatnonzero(bus.cols["vn_kv"] > 70)
    if not pos.any() or not len(line):
        return False
    ends = set(line.cols["from_bus"].tolist()) & set(line.cols["to_bus"].tolist())
    return any(int(b) in ends for b in bus.ids[pos].tolist())


def check_p_limits(world):
    """``enforce_p_lims``: pandapower clips the P of every gen in service (at a bus in service)
    to its limits; gridtape clips sgen P only so far, so an OptionError naming the option (and
    the first such gen) when one of those gens is beyond its limits.  Gens out of service (or
    at a bus out of service) do not count."""
    import numpy as np

    gen = world["gen"]
    if not len(gen):
        return
    c = gen.cols
    bus = world["bus"]
    on = c["in_service"] & bus.cols["in_service"][bus.rows(c["bus"])]
    beyond = on & ((c["p_mw"] > c["max_p_mw"]) | (c["p_mw"] < c["min_p_mw"]))
    if beyond.any():
        gid = int(gen.ids[int(np.flatnonzero(beyond)[0])])
        raise _option_error(f"enforce_p_lims with a gen in service beyond its P limits (gen {gid}) is not modelled "
                            "(sgens are)", "enforce_p_lims")
