"""Whether a PEP 440 specifier set can match any version at all (``">2.0,<2.0"`` cannot).

The versions a set of clauses admits form an interval of the PEP 440 order with finitely many holes
(``!=``, ``!=X.*``, and the pre-release/post-release/local exclusions of ``<V`` and ``>V``), and every
edge of that interval or of a hole sits at, or just beside, a version written in a clause. So if the
set admits anything, it admits one of a finite number of *witnesses* built from those versions: each
version itself; its ``.dev0``, pre-release, ``.post0`` and local neighbours; releases just above it
(``1.0.1``, ``1.0.0.1``, ``1.1``), just below it (``0.999999999``) and strictly between two of them.
Each witness is checked with :mod:`packaging` itself (pre-releases allowed), so the answer agrees with
how packaging evaluates the set; no version is guessed at random.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
from collections.abc import Iterator

from packaging.specifiers import Specifier, SpecifierSet
from packaging.version import InvalidVersion, Version

__all__ = ["conflicting_clauses", "is_satisfiable", "witness"]


def __dir__() -> list[str]:
    return __all__


_BIG = 999_999_999
"""A release component larger than any real one: ``1.999999999`` stands for "just below 2"."""


def is_satisfiable(specifier: SpecifierSet) -> bool:
    """Whether any version (pre-releases included) satisfies every clause of *specifier*."""
    return witness(specifier) is not None


@functools.lru_cache(maxsize=1 << 14)
def witness(specifier: SpecifierSet) -> Version | str | None:
    """A version that satisfies every clause of *specifier*, or ``None`` when none can.

    A string is returned only for an ``===`` clause on something that is not a PEP 440 version.
    """
    clauses = list(specifier)
    if not clauses:
        return Version("0")
    for candidate in _candidates(clauses):
        if all(clause.contains(candidate, prereleases=True) for clause in clauses):
            return candidate
    return None


def conflicting_clauses(specifier: SpecifierSet) -> tuple[Specifier, ...]:
    """The fewest clauses of an unsatisfiable *specifier* that already exclude each other.

    One clause (``<0.dev0``), a pair (``>2.0`` and ``<2.0``), or all of them when no smaller subset
    is unsatisfiable. Empty for a satisfiable set.
    """
    clauses = sorted(specifier, key=str)
    if witness(specifier) is not None:
        return ()
    for size in (1, 2):
        for subset in itertools.combinations(clauses, size):
            if witness(SpecifierSet(",".join(map(str, subset)))) is None:
                return subset
    return tuple(clauses)


def _candidates(clauses: list[Specifier]) -> Iterator[Version | str]:
    versions: list[Version] = []
    for clause in clauses:
        text = clause.version
        if clause.operator == "===":
            yield text
            with contextlib.suppress(InvalidVersion):
                versions.append(Version(text))
            continue
        try:
            versions.append(Version(text[:-2] if text.endswith(".*") else text))
        except InvalidVersion:  # pragma: no cover - packaging parsed the clause
            continue
    # The clause versions themselves first: they settle almost every real (satisfiable) set.
    yield from versions
    for version in versions:
        yield from _around(version)
    for low, high in itertools.combinations(versions, 2):
        yield from _between(low, high)
    for epoch in sorted({version.epoch for version in versions} | {0}):
        prefix = f"{epoch}!" if epoch else ""
        for text in ("0.dev0", "0", str(_BIG)):
            yield Version(prefix + text)


def _make(epoch: int, release: tuple[int, ...], suffix: str = "") -> Version | None:
    if not release or min(release) < 0:
        return None
    prefix = f"{epoch}!" if epoch else ""
    try:
        return Version(prefix + ".".join(map(str, release)) + suffix)
    except InvalidVersion:  # pragma: no cover - every suffix used is valid
        return None


def _around(version: Version) -> Iterator[Version]:
    """Versions at and right beside *version*: the edges a clause on it can put a bound at."""
    epoch, release = version.epoch, version.release
    suffixes = [".dev0", "a0", "a0.dev0", f"rc{_BIG}", ".post0", ".post0.dev0", "+0", f".post{_BIG}"]
    if version.pre is not None:
        letter, number = version.pre
        pre = f"{letter}{number}"
        suffixes += [pre, f"{pre}.dev0", f"{pre}.post0", f"{letter}{number + 1}", f"{pre}+0"]
    if version.post is not None:
        suffixes += [f".post{version.post}", f".post{version.post}.dev0", f".post{version.post + 1}"]
        suffixes += [f".post{version.post}+0"]
    if version.dev is not None:
        suffixes += [f".dev{version.dev + 1}"]
        if version.pre is not None:
            letter, number = version.pre
            suffixes += [f"{letter}{number}.dev{version.dev + 1}"]
    if version.local is not None:
        suffixes += [f"+{version.local}"]
    releases = [release]
    releases += [release + (0,) * zeros + (1,) for zeros in range(3)]
    releases += [(*release[:index], release[index] + 1) for index in range(len(release))]
    releases += [
        (*release[:index], release[index] - 1, _BIG) for index in range(len(release)) if release[index]
    ]
    for candidate_release, suffix in itertools.product(releases, ["", *suffixes]):
        candidate = _make(epoch, candidate_release, suffix)
        if candidate is not None:
            yield candidate


def _between(first: Version, second: Version) -> Iterator[Version]:
    """Releases strictly between two versions' releases (none when they share an epoch and release)."""
    if first.epoch != second.epoch:
        return
    width = max(len(first.release), len(second.release)) + 1
    low, high = sorted(
        (
            first.release + (0,) * (width - len(first.release)),
            second.release + (0,) * (width - len(second.release)),
        )
    )
    if low == high:
        return
    index = next(i for i in range(width) if low[i] != high[i])
    # low + (1,) shares low's prefix up to the first difference, so it is above low and below high.
    for candidate_release in ((*low, 1), (*low[:index], low[index] + 1)):
        candidate = _make(first.epoch, candidate_release)
        if candidate is not None:
            yield candidate
