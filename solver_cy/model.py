"""The bus-branch model, world columns -> per-unit branches, bus shunts, injections and bus
types, with pandapower's element models (see docs/model-notes.md), in three rooms:

- topology.py (``topo``): internal buses, branch list, connectivity, bus types;
- branches.py (``adm``): per-branch 2x2 admittances and bus shunts;
- injections.py (``inj``): specified complex power and voltage set-points;

and one cache of all of them, model_cache.py, which hears the world's dirty set and decides how
much to rebuild.  This module only gathers the names other code imports.
"""
from .branches import SWITCH_RX_RATIO, fill_admittances  # noqa: F401
from .topology import NONE, PQ, PV, Q_LIM_DEFAULT, REF, Branches, Topology, build_topology  # noqa: F401
from .chartables import char_table, column, shunt_step_values, table_values  # noqa: F401
