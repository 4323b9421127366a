"""Writing MATPOWER ``.m`` case files: a plain formatter of MATPOWER data (used to produce test and
bundled case files; the reader is world/io_matpower.py)."""
from __future__ import annotations

import math
import os

import numpy as np

_WIDTH = {"bus": 13, "gen": 21, "branch": 13}


def format_matpower(mpc: dict, name: str = "case", *, header: str = "") -> str:
    """The text of a MATPOWER ``.m`` file for ``mpc`` (``baseMVA``, ``bus``, ``gen``, ``branch``
    and optionally ``gencost`` / ``bus_name``).  Numbers are written with repr precision; bus,
    gen and branch keep their standard MATPOWER columns only."""
    lines = [f"function mpc = {name}"]
    if header:
        lines += ["%" + (" " + h if h else "") for h in header.splitlines()]
    lines += ["", "%% MATPOWER Case Format : Version 2", "mpc.version = '2';", "",
              "%%-----  Power Flow Data  -----%%", "%% system MVA base",
              f"mpc.baseMVA = {_mfmt(float(mpc['baseMVA']))};", ""]
    titles = {"bus": "bus_i\ttype\tPd\tQd\tGs\tBs\tarea\tVm\tVa\tbaseKV\tzone\tVmax\tVmin",
              "gen": "bus\tPg\tQg\tQmax\tQmin\tVg\tmBase\tstatus\tPmax\tPmin\tPc1\tPc2\tQc1min\tQc1max\t"
                     "Qc2min\tQc2max\tramp_agc\tramp_10\tramp_30\tramp_q\tapf",
              "branch": "fbus\ttbus\tr\tx\tb\trateA\trateB\trateC\tratio\tangle\tstatus\tangmin\tangmax"}
    for key in ("bus", "gen", "branch", "gencost"):
        if key not in mpc:
            continue
        a = np.atleast_2d(np.asarray(mpc[key], dtype=float))
        if key in _WIDTH:
            a = a[:, :_WIDTH[key]]
        if key == "gencost":
            lines += ["%%-----  OPF Data  -----%%", "%% generator cost data"]
        else:
            lines += [f"%% {key} data", f"%\t{titles[key]}"]
        lines.append(f"mpc.{key} = [")
        for row in a:
            vals = [_mfmt(v) for v in row]
            lines.append("\t" + "\t".join(vals) + ";")
        lines += ["];", ""]
    if "bus_name" in mpc:
        lines += ["%% bus names", "mpc.bus_name = {"]
        lines += ["\t'" + str(s).replace("'", "''") + "';" for s in mpc["bus_name"]]
        lines += ["};", ""]
    return "\n".join(lines) + "\n"


def _mfmt(v: float) -> str:
    v = float(v)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Inf" if v > 0 else "-Inf"
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    return repr(v)


def write_matpower(mpc: dict, path, name=None, *, header: str = "") -> None:
    """Write ``mpc`` (MATPOWER data, 1-based bus numbers) as a ``.m`` case file."""
    path = os.fspath(path)
    if name is None:
        name = os.path.splitext(os.path.basename(path))[0]
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(format_matpower(mpc, name, header=header))
