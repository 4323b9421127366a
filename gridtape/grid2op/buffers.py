"""The backend's results: two float32 buffers grid2op's getters read.

- ``buf["line"]``: rows p, q, v, a, theta; columns the origin ends of every powerline, then the
  extremity ends;
- ``buf["inj"]``: rows p, q, v, theta; columns generators, loads, storage units, shunts.

``grp[group]`` are (rows, elements) views of them, ``res[name]`` single rows (``p_or``,
``prod_q``, ``gen_theta``, ...), ``rows[group]`` the getters' rows, bound once (grid2op calls some
getters several times a step)."""
from __future__ import annotations

import numpy as np
from grid2op.dtypes import dt_float

INJ_GROUPS = ("gen", "load", "storage", "shunt")


class Buffers:
    """Result buffers of a grid with ``n_line`` powerlines and ``sizes`` = (generators, loads,
    storage units, shunts); every value NaN until a power flow fills them."""

    def __init__(self, n_line, sizes):
        self.buf = {"line": np.full((5, 2 * n_line), np.nan, dtype=dt_float),
                    "inj": np.full((4, sum(sizes)), np.nan, dtype=dt_float)}
        ends = np.cumsum((0,) + tuple(sizes))
        self.inj_slices = {g: slice(int(ends[i]), int(ends[i + 1])) for i, g in enumerate(INJ_GROUPS)}
        self.inj_sizes = tuple(int(ends[i + 1] - ends[i]) for i in range(len(INJ_GROUPS)))
        self._bind()

    def copy(self):
        out = Buffers.__new__(Buffers)
        out.buf = {k: v.copy() for k, v in self.buf.items()}
        out.inj_slices, out.inj_sizes = self.inj_slices, self.inj_sizes
        out._bind()
        return out

    def _bind(self):
        L = self.buf["line"]
        n = L.shape[1] // 2
        grp = {"or": L[:, :n], "ex": L[:, n:]}
        grp.update({g: self.buf["inj"][:, sl] for g, sl in self.inj_slices.items()})
        res = {}
        for i, name in enumerate(("p", "q", "v", "a", "theta")):
            res[f"{name}_or"], res[f"{name}_ex"] = grp["or"][i], grp["ex"][i]
        for g, pre in (("gen", "prod_"), ("load", "load_"), ("storage", "storage_")):
            for i, q in enumerate(("p", "q", "v")):
                res[pre + q] = grp[g][i]
            res[g + "_theta"] = grp[g][3]
        rows = {g: tuple(grp[g][i] for i in range(3)) for g in INJ_GROUPS}
        rows["or"] = tuple(res[f"{q}_or"] for q in ("p", "q", "v", "a"))
        rows["ex"] = tuple(res[f"{q}_ex"] for q in ("p", "q", "v", "a"))
        self.grp, self.res, self.rows = grp, res, rows

    def nan(self):
        for b in self.buf.values():
            b[:] = np.nan

    def state(self):
        return {k: v.copy() for k, v in self.buf.items()}

    def restore(self, state):
        for k, v in state.items():
            self.buf[k][:] = v
