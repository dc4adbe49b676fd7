"""Random small indexes: every Resolution satisfies every requirement (checked with packaging),
and whenever the resolver says "unsatisfiable", a brute-force search over the index agrees.

Seeded, so a failure names the seed that reproduces it. The indexes have extras, markers that
never hold, versions whose Requires-Python the environment fails, and requirements the index
cannot meet; no pre-releases or yanked versions (their rules are tested case by case).
"""

from __future__ import annotations

import functools
import itertools
import random
from collections.abc import Iterator
from typing import Any

import pytest
from packaging.requirements import Requirement
from resolver_cases.driver import DEFAULT_ENVIRONMENT, resolve

from resolver import NoSolution, Resolution

SEEDS = range(200)
Index = dict[str, dict[str, dict[str, Any]]]


def random_specifier(rng: random.Random, versions: list[str]) -> str:
    v, w = rng.choice(versions), rng.choice(versions)
    low, high = min(v, w), max(v, w)
    return rng.choice(["", f"<{v}", f"<={v}", f"=={v}", f">={low},<={high}", f"<{high}", f">={v}", f"!={v}"])


def random_index(rng: random.Random) -> tuple[Index, list[str]]:
    names = [f"p{i}" for i in range(rng.randint(2, 5))]
    releases = {n: [f"{v}.0" for v in sorted(rng.sample(range(1, 9), rng.randint(2, 5)))] for n in names}
    extras = {n: rng.random() < 0.3 for n in names}

    def requirement(target: str) -> str:
        extra = "[x]" if extras[target] and rng.random() < 0.5 else ""
        return f"{target}{extra}{random_specifier(rng, releases[target])}"

    index: Index = {}
    for name in names:
        index[name] = {}
        for version in releases[name]:
            requires = [requirement(target) for target in names if target != name and rng.random() < 0.3]
            if extras[name]:
                target = rng.choice([n for n in names if n != name])
                requires.append(f"{requirement(target)}; extra == 'x'")
            if rng.random() < 0.1:
                requires.append(f"{requirement(rng.choice(names))}; python_version < '3'")
            info: dict[str, Any] = {"requires": requires}
            if rng.random() < 0.07:
                info["requires_python"] = ">=3.99"
            index[name][version] = info
    requested = [requirement(n) for n in rng.sample(names, rng.randint(1, min(3, len(names))))]
    return index, requested


@functools.cache
def active(line: str, extra: str = "") -> Requirement | None:
    """The requirement if it holds for the project itself (extra "") or only through ``extra``."""
    requirement = Requirement(line)
    marker = requirement.marker
    if marker is None:
        return None if extra else requirement
    holds = marker.evaluate({**DEFAULT_ENVIRONMENT, "extra": extra})
    if extra:
        holds = holds and not marker.evaluate({**DEFAULT_ENVIRONMENT, "extra": ""})
    return requirement if holds else None


def active_requirements(
    index: Index, pins: dict[str, str], extras: dict[str, set[str]]
) -> Iterator[Requirement]:
    for name, version in pins.items():
        for line in index[name][version]["requires"]:
            for extra in ["", *sorted(extras.get(name, ()))]:
                requirement = active(line, extra)
                if requirement is not None:
                    yield requirement


def violations(
    index: Index, requested: list[str], pins: dict[str, str], extras: dict[str, set[str]]
) -> list[str]:
    """What is wrong with ``pins`` (with these extras); empty when they satisfy everything."""
    problems = []
    for name, version in pins.items():
        if index[name][version].get("requires_python"):
            problems.append(f"{name} {version} needs another Python")
    direct = [r for r in map(active, requested) if r is not None]
    for requirement in [*direct, *active_requirements(index, pins, extras)]:
        version = pins.get(requirement.name)
        if version is None or not requirement.specifier.contains(version, prereleases=True):
            problems.append(f"{requirement} is not met by {requirement.name} {version}")
        elif not requirement.extras <= extras.get(requirement.name, set()):
            problems.append(f"{requirement} lacks extras {requirement.extras}")
    return problems


def extras_closure(index: Index, requested: list[str], pins: dict[str, str]) -> dict[str, set[str]]:
    extras: dict[str, set[str]] = {}
    while True:
        wanted = [
            *(r for r in map(active, requested) if r is not None),
            *active_requirements(index, pins, extras),
        ]
        grown = {name: set(e) for name, e in extras.items()}
        for requirement in wanted:
            if requirement.name in pins:
                grown.setdefault(requirement.name, set()).update(requirement.extras)
        if grown == extras:
            return extras
        extras = grown


def brute_force(index: Index, requested: list[str]) -> dict[str, str] | None:
    names = sorted(index)
    choices = [[None, *(v for v, info in index[n].items() if not info.get("requires_python"))] for n in names]
    for assignment in itertools.product(*choices):
        pins = {n: v for n, v in zip(names, assignment, strict=True) if v is not None}
        if not violations(index, requested, pins, extras_closure(index, requested, pins)):
            return pins
    return None


@pytest.mark.parametrize("seed", SEEDS)
def test_random_index(seed: int) -> None:
    rng = random.Random(seed)
    index, requested = random_index(rng)
    outcome = resolve(index, requested).outcome
    if isinstance(outcome, Resolution):
        extras = {name: set(e) for name, e in outcome.extras.items()}
        assert not violations(index, requested, outcome.pins, extras), (index, requested, outcome)
    else:
        assert isinstance(outcome, NoSolution)
        assert brute_force(index, requested) is None, (index, requested, outcome.report)
        assert outcome.report.endswith("your requirements are unsatisfiable.")
    reordered = resolve(index, list(reversed(requested))).outcome
    assert type(reordered) is type(outcome)
    if isinstance(outcome, Resolution):
        assert isinstance(reordered, Resolution) and reordered.pins == outcome.pins


def test_random_indexes_are_not_trivial() -> None:
    """The generator must produce both outcomes, and resolutions that needed backtracking."""
    outcomes = [resolve(*random_index(random.Random(seed))).outcome for seed in SEEDS]
    resolved = [o for o in outcomes if isinstance(o, Resolution)]
    assert 60 < len(resolved) < 180
    assert sum(o.stats.conflicts > 0 for o in resolved) >= 15
