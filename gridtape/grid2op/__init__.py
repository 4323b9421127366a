"""gridtape as a grid2op backend.

``GridtapeBackend`` plugs gridtape's engine into grid2op (``grid2op.make(env, backend=GridtapeBackend())``):

- the grid is the environment's pandapower JSON, read into a :class:`~gridtape.world.World`; each
  substation gets ``n_busbar_per_sub`` buses (the extra busbars are buses ``n_sub .. k*n_sub-1``,
  numbered as PandaPowerBackend numbers them), all in service: an empty busbar is just unsupplied;
- ``apply_action`` turns grid2op's backend action into world writes (injections, storage power,
  shunts, busbar moves, disconnections).  They are planned first and committed in one place, one
  journal transaction per call when a journal is given.  Only topology and voltage set-points
  that differ are written (and, journaled, only changed injections), so an injection-only step
  leaves the topology untouched and the next solve is incremental; a topology step's solve starts
  from the previous voltages;
- ``runpf`` solves and reads bus voltages and branch flows straight from the engine's arrays
  (no DataFrame per step).  A diverged or islanded grid returns ``(False, exc)`` with a grid2op
  ``DivergingPowerflow`` / ``IslandedGrid`` and leaves every result at NaN.

Units are grid2op's: MW, MVAr, kV, A, degrees.  See docs/grid2op.md.

Rooms: ``reader`` (grid.json to a World, busbars, names, grid2op's description), ``topology``
(topo_vect positions and the backend's topo_vect), ``planner`` (a backend action as planned
writes), ``commit`` (the planned writes into the world and the journal), ``buffers`` and
``results`` (the result copy into grid2op's float32 buffers), ``backend`` (the Backend API).
"""
from .backend import GridtapeBackend
from .reader import read_grid2op_json

__all__ = ["GridtapeBackend", "read_grid2op_json"]
