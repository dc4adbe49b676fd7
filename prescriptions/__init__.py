"""Prescriptions: Thoth's declarative resolver rules, loaded unchanged, validated, linted and indexed.

A pure library: YAML files in, typed units (:mod:`prescriptions.model`), problems with file, line
and key (:class:`Problem`), and a :class:`UnitIndex` of compiled units by package name out. It reads
files (the loader) and, given a :class:`CompileCache` with a directory, pickles results there; no
network, no database, no import of ``index_proxy``.

    result = load(["prescriptions/rules"], cache=CompileCache("var/prescriptions-cache"))
    problems = [*result.problems, *lint(result.units)]
    for unit in result.index.select(["tensorflow", "h5py"]): ...
"""

from prescriptions.cache import CompileCache
from prescriptions.compiler import CompiledUnit, compile_units, package_key
from prescriptions.index import UnitIndex
from prescriptions.lint import lint
from prescriptions.loader import METADATA_FILE, Prescriptions, load, parse
from prescriptions.problems import PrescriptionError, Problem, sort_problems
from prescriptions.specifiers import is_satisfiable

__all__ = [
    "METADATA_FILE",
    "CompileCache",
    "CompiledUnit",
    "PrescriptionError",
    "Prescriptions",
    "Problem",
    "UnitIndex",
    "compile_units",
    "is_satisfiable",
    "lint",
    "load",
    "package_key",
    "parse",
    "sort_problems",
]


def __dir__() -> list[str]:
    return __all__
