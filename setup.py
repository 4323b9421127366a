"""Build the Cython kernels of gridtape.solver_cy and gridtape.world (everything else is in
pyproject.toml)."""
import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

_KERNELS = ["ybus", "newton", "flows", "inject", "topo"]

extensions = [
    Extension(
        f"gridtape.solver_cy.{name}",
        [f"solver_cy/{name}.pyx"],
        include_dirs=[np.get_include(), "solver_cy"],
        extra_compile_args=["-O3"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        libraries=["dl"],
    )
    for name in _KERNELS
] + [
    Extension(
        f"gridtape.journal.{name}",
        [f"journal/{name}.pyx"],
        include_dirs=[np.get_include(), "journal"],
        extra_compile_args=["-O3"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )
    for name in ("frames", "recorder")
] + [
    Extension(
        "gridtape.world.colwrite",
        ["world/colwrite.pyx"],
        include_dirs=[np.get_include()],
        extra_compile_args=["-O3"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives={
            "language_level": 3,
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
        },
    )
)
