"""A PubGrub dependency resolver with a compiled core and a sans-IO interface.

A pure library: requirement strings, candidate lists and Requires-Dist lines in, pins (or a
readable explanation of why there are none) out. No network, no database, no import of
``index_proxy``; the app fetches what each :class:`Request` names, concurrently, and hands it
back. See :mod:`resolver.resolver` for the loop and :mod:`resolver._core` for the solver.
"""

try:
    from resolver import _core  # noqa: F401 - fail here, with the fix, rather than deep inside
except ImportError as error:  # pragma: no cover - exercised by a test that hides the module
    raise ImportError(
        "the resolver's compiled core is missing: run `pip install -e .` or `make install`"
    ) from error

from resolver.errors import NoSolution, ResolutionTooDeep, ResolverError, ResolverUsageError
from resolver.incompatibilities import Incompatibility, Term
from resolver.models import (
    ROOT,
    Candidate,
    Request,
    Resolution,
    ResolverOptions,
    ResolverStats,
)
from resolver.resolver import Resolver

__all__ = [
    "ROOT",
    "Candidate",
    "Incompatibility",
    "NoSolution",
    "Request",
    "Resolution",
    "ResolutionTooDeep",
    "Resolver",
    "ResolverError",
    "ResolverOptions",
    "ResolverStats",
    "ResolverUsageError",
    "Term",
]


def __dir__() -> list[str]:
    return __all__
