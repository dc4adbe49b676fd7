"""Build the resolver's compiled core; everything else about the project is in pyproject.toml."""

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

extensions = [
    Extension(
        "resolver._core",
        ["resolver/_core.pyx"],
        include_dirs=[numpy.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )
]

setup(
    ext_modules=cythonize(
        extensions,
        # boundscheck/wraparound are off file-wide in _core.pyx: every index there is checked by
        # construction (ids the solver handed out, loops bounded by the sizes they read).
        compiler_directives={"language_level": 3, "boundscheck": False, "wraparound": False},
    )
)
