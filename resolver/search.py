"""An anytime search for a better-scoring resolution than the first one found.

The solver returns the first valid resolution (newest versions first). Rules can score the pins
of a resolution (a penalty for a version with a known advisory, a bonus for a build made for the
machine, an alternative package offered by a pseudonym); this search proposes :class:`Trial` s,
each a small change to the best resolution so far (exclude one pinned version, or replace a
project by an alternative), which the app resolves and scores, and keeps the best. Which change
to try is learned as it goes: every move has a value, updated by temporal difference from the
score change it brought (``value += rate * (reward - value)``), and picked epsilon-greedily with a
seeded random generator, so the same seed and the same answers give the same trials.

Sans-IO like :class:`resolver.Resolver`: it never resolves anything itself::

    search = ImprovementSearch(first_score, seed=0, max_trials=50)
    while (trial := search.propose()) is not None and time_left():
        search.record(trial, resolve_and_score(trial))     # None when the trial has no solution
    best = search.best

A result is only ever replaced by a strictly better one (a higher score, or an equal score that
uses more of the rules' alternatives), so the search never returns less than the first resolution.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

__all__ = ["ImprovementSearch", "Replacement", "ScoredResolution", "SearchStats", "Trial"]


def __dir__() -> list[str]:
    return __all__


@dataclass(frozen=True, slots=True, order=True)
class Replacement:
    """Use ``alternative`` (at ``version``, or any version when None) wherever ``project`` is required."""

    project: str
    alternative: str
    version: str | None = None
    source: str = ""

    def apply(self, requirement: str) -> str:
        """``requirement`` with the project renamed, markers and extras kept; others unchanged."""
        try:
            parsed = Requirement(requirement)
        except InvalidRequirement:
            return requirement
        if canonicalize_name(parsed.name) != self.project:
            return requirement
        parsed.name = self.alternative
        if self.version is not None:
            parsed.specifier = SpecifierSet(f"=={self.version}")
        return str(parsed)


@dataclass(frozen=True, slots=True)
class Trial:
    """The request plus these changes: versions never to pick, and projects replaced."""

    exclude: frozenset[tuple[str, str]] = frozenset()
    replace: tuple[Replacement, ...] = ()

    def constraints(self) -> list[str]:
        """The exclusions as constraints (``name!=version``), which only act on projects in the graph."""
        return [f"{project}!={version}" for project, version in sorted(self.exclude)]

    def rewrite(self, requirement: str) -> str:
        for replacement in self.replace:
            requirement = replacement.apply(requirement)
        return requirement


@dataclass(frozen=True, slots=True)
class ScoredResolution:
    """What the app reports for a resolved trial.

    ``contributions`` are the score parts per pinned project (negative ones are what the search
    tries to move away from first); ``movable`` names pinned projects whose version choice a rule
    scores at all (others are never changed); ``alternatives`` are replacements the rules offer.
    """

    score: float
    pins: Mapping[str, str]
    contributions: Mapping[str, float] = field(default_factory=dict)
    movable: frozenset[str] = frozenset()
    alternatives: tuple[Replacement, ...] = ()


@dataclass(frozen=True, slots=True)
class SearchStats:
    trials: int = 0
    improvements: int = 0
    unsolvable: int = 0


_Move = tuple[str, str, str]  # ("exclude", project, version) or ("replace", project, alternative)

#: Probability of trying a move that is not the best valued one.
_EPSILON = 0.2
_RATE = 0.5


class ImprovementSearch:
    """Hill climbing over :class:`Trial` s from the first resolution, moves valued by TD(0)."""

    def __init__(
        self, first: ScoredResolution, *, seed: int = 0, max_trials: int = 100, older_versions: bool = True
    ) -> None:
        """*older_versions* false limits the moves to the rules' alternatives (for ``latest``,
        which never trades a newer version for a better score)."""
        if max_trials < 0:
            raise ValueError("max_trials must be at least 0")
        self._older_versions = older_versions
        self._random = random.Random(seed)
        self._max_trials = max_trials
        self._best: tuple[Trial, ScoredResolution] = (Trial(), first)
        self._first_score = first.score
        self._values: dict[_Move, float] = {}
        self._visited: set[Trial] = {Trial()}
        self._pending: tuple[Trial, _Move, float] | None = None
        self._trials = 0
        self._improvements = 0
        self._unsolvable = 0

    @property
    def best(self) -> tuple[Trial, ScoredResolution]:
        return self._best

    @property
    def stats(self) -> SearchStats:
        return SearchStats(self._trials, self._improvements, self._unsolvable)

    def propose(self) -> Trial | None:
        """The next trial, or None when the budget of trials is spent or nothing is left to try."""
        if self._pending is not None:
            raise RuntimeError("record() the proposed trial before asking for another")
        if self._trials >= self._max_trials:
            return None
        base, scored = self._best
        moves = [
            (move, trial)
            for move in self._moves(base, scored)
            if (trial := _apply(base, move)) not in self._visited
        ]
        if not moves:
            return None
        if self._random.random() < _EPSILON:
            move, trial = moves[self._random.randrange(len(moves))]
        else:
            move, trial = max(moves, key=lambda item: self._value(item[0], scored))
        self._visited.add(trial)
        self._pending = (trial, move, scored.score)
        self._trials += 1
        return trial

    def record(self, trial: Trial, outcome: ScoredResolution | None) -> None:
        """The resolution of the last proposed trial, scored; None when it had no solution."""
        if self._pending is None or self._pending[0] != trial:
            raise RuntimeError("record() takes the trial propose() returned last")
        _, move, base_score = self._pending
        self._pending = None
        if outcome is None:
            self._unsolvable += 1
            reward = -1.0
        else:
            reward = outcome.score - base_score
            if _rank(outcome, trial) > _rank(self._best[1], self._best[0]):
                self._best = (trial, outcome)
                self._improvements += 1
        value = self._values.get(move, 0.0)
        self._values[move] = value + _RATE * (reward - value)

    def _moves(self, base: Trial, scored: ScoredResolution) -> list[_Move]:
        moves: list[_Move] = []
        for project in sorted(scored.movable) if self._older_versions else ():
            version = scored.pins.get(project)
            if version is not None:
                moves.append(("exclude", project, version))
        replaced = {r.project for r in base.replace}
        for alternative in sorted(scored.alternatives):
            if alternative.project not in replaced and alternative.project in scored.pins:
                moves.append(("replace", alternative.project, _encode(alternative)))
        return moves

    def _value(self, move: _Move, scored: ScoredResolution) -> float:
        if move in self._values:
            return self._values[move]
        # Untried: expect to win back what the project costs now (a penalty), a little for others.
        kind, project, _ = move
        if kind == "replace":
            return 0.5
        return max(-scored.contributions.get(project, 0.0), 0.01)


def _rank(scored: ScoredResolution, trial: Trial) -> tuple[float, int]:
    return (round(scored.score, 9), len(trial.replace))


def _encode(replacement: Replacement) -> str:
    return f"{replacement.alternative}=={replacement.version or ''}|{replacement.source}"


def _decode(project: str, text: str) -> Replacement:
    head, _, source = text.partition("|")
    alternative, _, version = head.partition("==")
    return Replacement(project, alternative, version or None, source)


def _apply(base: Trial, move: _Move) -> Trial:
    kind, project, detail = move
    if kind == "exclude":
        return Trial(base.exclude | {(project, detail)}, base.replace)
    return Trial(base.exclude, (*base.replace, _decode(project, detail)))
