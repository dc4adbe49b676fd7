"""One project's candidate versions as arrays, and specifiers evaluated into index sets.

Versions are sorted oldest → newest, so a version *is* its index and a set of versions is a bool
mask over the indices; the solver core gets the mask's interval boundaries
(:func:`mask_to_bounds`). Each specifier is evaluated against a project once and cached.

Which versions a specifier admits beyond "it matches" (PEP 440 and PEP 592):

- a pre-release is admitted if the options allow pre-releases, if a direct requirement or a
  constraint on the project names a pre-release (then for every specifier, as uv does), if the
  specifier itself names one (``>=2.0b1``), or if no usable final release matches the specifier
  ("usable": not yanked, Requires-Python satisfied);
- a yanked version is admitted only by a specifier that pins it exactly (``==1.0``, ``===1.0``),
  or everywhere when a direct requirement or a constraint pins it.

Both rules are decided per specifier, so the sets are fixed facts the solver can learn from.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt
from packaging.specifiers import InvalidSpecifier, Specifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from resolver._requirements import Lru
from resolver.models import Candidate, PrereleaseMode

__all__ = ["ProjectVersions", "mask_to_bounds", "parse_version", "project_versions"]

Mask = npt.NDArray[np.bool_]

# Every request offers the same candidate versions again, and parsing one is most of building a
# project's arrays: keep the valid ones parsed, least recently used out first. A Version is
# immutable, so resolutions can share one.
_VERSIONS: Lru[str, Version] = Lru(50_000)


def parse_version(text: str) -> Version | None:
    """``Version(text)``, or None for an invalid version; valid ones are cached."""
    version = _VERSIONS.get(text)
    if version is None:
        try:
            version = Version(text)
        except InvalidVersion:
            return None
        _VERSIONS.put(text, version)
    return version


def mask_to_bounds(mask: Mask) -> npt.NDArray[np.intc]:
    """The boundaries of the runs of True in ``mask``: ``[F,T,T,F,T]`` -> ``[1, 3, 4, 5]``."""
    padded = np.concatenate(([False], mask, [False]))
    return np.flatnonzero(padded[1:] != padded[:-1]).astype(np.intc)


def bounds_to_mask(bounds: Iterable[int], size: int) -> Mask:
    mask = np.zeros(size, dtype=bool)
    edges = list(bounds)
    for lo, hi in zip(edges[::2], edges[1::2], strict=True):
        mask[lo:hi] = True
    return mask


def _exact_pins(specifier: SpecifierSet) -> list[SpecifierSet]:
    return [
        SpecifierSet(str(spec))
        for spec in specifier
        if spec.operator == "===" or (spec.operator == "==" and not spec.version.endswith(".*"))
    ]


def python_satisfies(requires_python: str | None, python: Version, cache: dict[str, bool]) -> bool:
    """Whether ``python`` satisfies a Requires-Python; an invalid one is ignored, as pip does."""
    if not requires_python:
        return True
    ok = cache.get(requires_python)
    if ok is None:
        try:
            ok = SpecifierSet(requires_python).contains(python, prereleases=True)
        except InvalidSpecifier:
            ok = True
        cache[requires_python] = ok
    return ok


class ProjectVersions:
    """A project's candidates, sorted by version, with the per-version facts as arrays.

    Candidates with an invalid version are dropped; of equal versions (``1.0`` and ``1.0.0``)
    the best one is kept: not yanked, then the higher ``preference``.
    """

    __slots__ = (
        "_allow_prereleases",
        "_bounds",
        "_by_version",
        "_clauses",
        "_masks",
        "_mode",
        "_plain",
        "_position",
        "candidates",
        "hidden",
        "name",
        "preference",
        "prerelease",
        "python_ok",
        "requires_python",
        "strings",
        "usable_final",
        "versions",
        "yanked",
        "yanked_allowed",
    )

    def __init__(
        self,
        name: str,
        candidates: Iterable[Candidate],
        *,
        python: Version,
        mode: PrereleaseMode,
        explicit_prerelease: bool,
        yanked_pins: Sequence[SpecifierSet],
        python_cache: dict[str, bool],
    ) -> None:
        best: dict[Version, Candidate] = {}
        for candidate in candidates:
            version = parse_version(candidate.version)
            if version is None:
                continue
            kept = best.get(version)
            if kept is None or (not candidate.yanked, candidate.preference) > (
                not kept.yanked,
                kept.preference,
            ):
                best[version] = candidate
        order = sorted(best)
        chosen = [best[v] for v in order]
        self.name = name
        self._masks: dict[SpecifierSet, Mask] = {}  # equal specifier sets hash alike
        self._bounds: dict[SpecifierSet, npt.NDArray[np.intc]] = {}
        self._clauses: dict[str, Mask] = {}
        self.versions = np.empty(len(order), dtype=object)
        self.versions[:] = order
        self.strings = tuple(c.version for c in chosen)
        self.candidates = tuple(chosen)
        self.requires_python = tuple(c.requires_python for c in chosen)
        self.prerelease = np.array([v.is_prerelease for v in order], dtype=bool)
        self.yanked = np.array([c.yanked for c in chosen], dtype=bool)
        self.preference = np.array([c.preference for c in chosen], dtype=float)
        self.python_ok = np.array(
            [python_satisfies(c.requires_python, python, python_cache) for c in chosen], dtype=bool
        )
        self.usable_final = ~self.prerelease & ~self.yanked & self.python_ok
        # No pre-releases and nothing yanked: a specifier admits exactly what it matches.
        self._plain = not self.prerelease.any() and not self.yanked.any()
        self._mode = mode
        self._allow_prereleases = mode == "allow" or (
            mode == "if-necessary-or-explicit" and explicit_prerelease
        )
        self.yanked_allowed = np.zeros(len(order), dtype=bool)
        for specifier in yanked_pins:
            for pin in _exact_pins(specifier):
                self.yanked_allowed |= self.match(pin) & self.match(specifier)
        # Versions a report may skip over when it renders ranges: never offered unless named.
        self.hidden = (self.prerelease & (not self._allow_prereleases)) | (self.yanked & ~self.yanked_allowed)
        self._position: dict[str, int] = {string: index for index, string in enumerate(self.strings)}
        self._by_version: dict[Version, int] = {version: index for index, version in enumerate(order)}

    def __len__(self) -> int:
        return len(self.strings)

    def index_of(self, version: str) -> int | None:
        index = self._position.get(version)
        if index is None:
            parsed = parse_version(version)  # "1.0.0" is the candidate "1.0"
            if parsed is None:
                return None
            index = self._by_version.get(parsed)
        return index

    def match(self, specifier: SpecifierSet) -> Mask:
        """The versions the specifier matches, pre-releases and yanked ones included."""
        mask = np.ones(len(self), dtype=bool)
        for clause in specifier:
            mask &= self._clause(clause)
        return mask

    def _clause(self, clause: Specifier) -> Mask:
        """One clause's matches, cached. Over versions sorted oldest → newest, an ordered
        comparison is monotone (``>=``/``>`` hold from some version on, ``<=``/``<`` up to some
        version: PEP 440 sorts a version's pre-releases, post-releases and local versions next to
        it), so it is bisected with packaging's own ``contains`` as the predicate: exact
        semantics in O(log n) calls. Other operators are tested version by version."""
        key = str(clause)
        mask = self._clauses.get(key)
        if mask is None:
            count = len(self)

            def holds(index: int) -> bool:
                return clause.contains(self.versions[index], prereleases=True)

            if clause.operator in (">=", ">"):
                mask = np.zeros(count, dtype=bool)
                mask[bisect_left(range(count), True, key=holds) :] = True
            elif clause.operator in ("<=", "<"):
                mask = np.zeros(count, dtype=bool)
                mask[: bisect_left(range(count), True, key=lambda index: not holds(index))] = True
            else:
                mask = np.fromiter(map(holds, range(count)), dtype=bool, count=count)
            mask.flags.writeable = False
            self._clauses[key] = mask
        return mask

    def allowed(self, specifier: SpecifierSet) -> Mask:
        """The versions a requirement with this specifier admits (module docstring); cached."""
        mask = self._masks.get(specifier)
        if mask is None:
            match = self.match(specifier)
            if self._plain:
                match.flags.writeable = False  # shared: resolutions share this object
                self._masks[specifier] = match
                return match
            if self._allow_prereleases:
                prereleases_ok = True
            elif self._mode == "disallow":
                prereleases_ok = False
            else:
                prereleases_ok = bool(specifier.prereleases) or not (match & self.usable_final).any()
            mask = match if prereleases_ok else match & ~self.prerelease
            yanked_ok = self.yanked_allowed.copy()
            for pin in _exact_pins(specifier):
                yanked_ok |= self.match(pin)
            mask = mask & (~self.yanked | yanked_ok)
            mask.flags.writeable = False
            self._masks[specifier] = mask
        return mask

    def allowed_bounds(self, specifier: SpecifierSet) -> npt.NDArray[np.intc]:
        """``mask_to_bounds(self.allowed(specifier))``, cached (read-only)."""
        bounds = self._bounds.get(specifier)
        if bounds is None:
            bounds = mask_to_bounds(self.allowed(specifier))
            bounds.flags.writeable = False
            self._bounds[specifier] = bounds
        return bounds

    def likely_pick(self, specifiers: Iterable[SpecifierSet]) -> int | None:
        """The newest version the known requirements on this project admit: a prefetch guess."""
        mask = self.python_ok
        narrowed = False
        for specifier in specifiers:
            candidate = mask & self.allowed(specifier)
            if candidate.any():
                mask, narrowed = candidate, True
        if not narrowed:
            mask = mask & self.allowed(SpecifierSet())
        found = np.flatnonzero(mask)
        return int(found[-1]) if len(found) else None

    def python_incompatible_runs(self) -> list[tuple[int, int, str]]:
        """``(start, stop, requires_python)`` runs of versions the environment's Python fails."""
        runs: list[tuple[int, int, str]] = []
        for index in np.flatnonzero(~self.python_ok):
            requires = self.requires_python[index] or ""
            if runs and runs[-1][1] == index and runs[-1][2] == requires:
                runs[-1] = (runs[-1][0], int(index) + 1, requires)
            else:
                runs.append((int(index), int(index) + 1, requires))
        return runs

    def describe(self, mask: Mask) -> str:
        """A specifier for the versions in ``mask``: ``""`` (all of several), ``"==1.0"``, ``">=1.0,<2.0"``,
        ``"<1.0 | >=2.0"``. Hidden versions outside the mask (pre-releases and yanked versions
        no specifier asked for) are skipped over rather than splitting a range."""
        positions = np.flatnonzero(~self.hidden | mask)
        inside = mask[positions]
        if not len(positions) or not inside.any():
            return ""
        if inside.all():
            return f"=={self.strings[int(positions[0])]}" if len(positions) == 1 else ""
        parts = []
        for lo, hi in zip(*[iter(mask_to_bounds(inside))] * 2, strict=True):
            first, last = int(positions[lo]), int(positions[hi - 1])
            if first == last:
                parts.append(f"=={self.strings[first]}")
                continue
            clauses = []
            if lo > 0:
                clauses.append(f">={self.strings[first]}")
            if hi < len(positions):
                clauses.append(f"<{self.strings[int(positions[hi])]}")
            parts.append(",".join(clauses))
        return " | ".join(parts)

    def covers_all(self, mask: Mask) -> bool:
        """Whether ``mask`` holds every version a report would show."""
        return bool(len(self)) and bool(mask[~self.hidden].all()) and bool(mask.any())

    def hint(self, specifier: SpecifierSet) -> str:
        """Why a requirement with this specifier admits no version."""
        if not len(self):
            return f"no versions of {self.name} were found"
        match = self.match(specifier)
        reasons = []
        yanked = [self.strings[i] for i in np.flatnonzero(match & self.yanked)]
        if yanked:
            reasons.append(f"{_listing(yanked)} {'is' if len(yanked) == 1 else 'are'} yanked")
        pre = [self.strings[i] for i in np.flatnonzero(match & self.prerelease & ~self.yanked)]
        if pre:
            noun = "a pre-release" if len(pre) == 1 else "pre-releases"
            reasons.append(f"{_listing(pre)} {'is' if len(pre) == 1 else 'are'} {noun}")
        if reasons:
            return "; ".join(reasons)
        return f"the versions of {self.name} are {_listing(self.strings)}"


# A warm server gets the same candidate lists for the same Python with every request, and building
# a project's arrays, then the masks of its specifiers, is a good part of a resolution: keep the
# most recently used ones. An instance never changes after it is built except for its caches of
# masks, which depend only on what the key holds, so resolutions can share it.
_SHARED: Lru[tuple[object, ...], ProjectVersions] = Lru(2_000)


def project_versions(
    name: str,
    candidates: Iterable[Candidate],
    *,
    python: Version,
    mode: PrereleaseMode,
    explicit_prerelease: bool,
    yanked_pins: Sequence[SpecifierSet],
    python_cache: dict[str, bool],
) -> ProjectVersions:
    """``ProjectVersions(...)``, shared with earlier resolutions that built it from the same."""
    offered = tuple(candidates)
    key = (name, offered, python, mode, explicit_prerelease, tuple(yanked_pins))
    versions = _SHARED.get(key)
    if versions is not None:
        return versions
    versions = ProjectVersions(
        name,
        offered,
        python=python,
        mode=mode,
        explicit_prerelease=explicit_prerelease,
        yanked_pins=yanked_pins,
        python_cache=python_cache,
    )
    _SHARED.put(key, versions)
    return versions


def _listing(strings: Sequence[str], limit: int = 5) -> str:
    if len(strings) <= limit:
        return ", ".join(strings)
    return "…, " + ", ".join(strings[-limit:])
