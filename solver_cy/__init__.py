"""gridtape's solver: the bus-branch model built from world columns (pandapower's element models),
Cython kernels for Ybus, Newton-Raphson over KLU, DC flow and branch flows."""
