"""The column definitions of the schema registry (world/schema.py): the schema dtypes, ``Column``
(one column: dtype, unit, default, bounds, what a write ``affects``, what it refers to),
``KindSpec`` (an element kind's ordered columns) and the helpers the registry's tables are
declared with."""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

F8, I8, BOOL, STR = "float64", "int64", "bool", "str"

#: numpy dtype used in the world for each schema dtype
NUMPY_DTYPES = {F8: np.dtype("float64"), I8: np.dtype("int64"), BOOL: np.dtype("bool"), STR: np.dtype(object)}


@dataclass(frozen=True)
class Column:
    """One component column of an element kind."""

    name: str
    dtype: str
    unit: str = ""
    default: object = None  # None = required (no default) for numeric/ref columns; None value for str
    lo: float | None = None  # inclusive lower bound
    hi: float | None = None  # inclusive upper bound
    nan_ok: bool = False  # NaN is an allowed value (e.g. optional limits)
    affects: str = "none"
    ref: str | None = None  # the kind this column refers to ("bus"), if it is a reference
    choices: tuple | None = None  # allowed values of a str column (None = free text)
    doc: str = ""
    lo_open: bool = False  # the lower bound is exclusive (vn_kv > 0)
    #: the bounds every write is checked against (derived): a float column the power flow reads
    #: (``affects`` not "none") must be finite unless its default is infinite (reactive limits)
    vmin: float = field(init=False, compare=False, repr=False, default=-math.inf)
    vmax: float = field(init=False, compare=False, repr=False, default=math.inf)

    def __post_init__(self):
        big = sys.float_info.max if self.finite else math.inf
        lo = -big if self.lo is None else (math.nextafter(self.lo, math.inf) if self.lo_open else float(self.lo))
        hi = big if self.hi is None else float(self.hi)
        object.__setattr__(self, "vmin", max(lo, -big))
        object.__setattr__(self, "vmax", min(hi, big))

    @property
    def finite(self) -> bool:
        """Whether the values must be finite (NaN is governed by ``nan_ok``)."""
        return (self.dtype in (F8, I8) and self.affects != "none"
                and not (isinstance(self.default, float) and math.isinf(self.default)))

    def bound_error(self, v) -> str:
        """Why the number ``v`` is out of this column's bounds."""
        if math.isinf(v) and self.finite:
            return "must be finite"
        if self.lo is not None and (v < self.lo or (self.lo_open and v == self.lo)):
            return f"must be > {self.lo}" if self.lo_open else f"must be >= {self.lo}"
        return f"must be <= {self.hi}"

    @property
    def required(self) -> bool:
        return self.default is None and self.dtype != STR

    @property
    def np_dtype(self) -> np.dtype:
        return NUMPY_DTYPES[self.dtype]


@dataclass(frozen=True)
class KindSpec:
    """An element kind: its ordered columns and how it is described."""

    name: str
    columns: tuple
    doc: str = ""
    by_name: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self):
        object.__setattr__(self, "by_name", MappingProxyType({c.name: c for c in self.columns}))

    def __contains__(self, name) -> bool:
        return name in self.by_name

    def __getitem__(self, name) -> Column:
        return self.by_name[name]

    @property
    def names(self) -> tuple:
        return tuple(c.name for c in self.columns)

    @property
    def refs(self) -> tuple:
        return tuple(c for c in self.columns if c.ref)


def _c(name, dtype, unit="", default=None, lo=None, hi=None, nan_ok=False, affects="none", ref=None,
       choices=None, doc="", lo_open=False):
    return Column(name, dtype, unit, default, lo, hi, nan_ok, affects, ref, choices, doc, lo_open)


def _name():
    return _c("name", STR, doc="free-text name")


def _in_service():
    return _c("in_service", BOOL, default=True, affects="topo", doc="element takes part in the power flow")


def _bus(name="bus"):
    return _c(name, I8, ref="bus", lo=0, affects="topo", doc="id of the connected bus")


_NANF = float("nan")
_INF = float("inf")


def _opt(name, unit, doc=""):
    """An optional float column used only by OPF/limits, NaN when not given."""
    return _c(name, F8, unit, default=_NANF, nan_ok=True, doc=doc)


def _scaling():
    return _c("scaling", F8, default=1.0, lo=0.0, affects="inj", doc="multiplies p_mw and q_mvar")
