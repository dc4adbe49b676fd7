"""The improvement search: seeded, reproducible, never worse than the first resolution."""

from __future__ import annotations

import pytest
from resolver_cases.driver import resolve

from resolver.search import ImprovementSearch, Replacement, ScoredResolution, Trial

INDEX = {
    "app": {"1.0": {"requires": ["lib", "util"]}},
    "lib": {"1.0": {}, "2.0": {}, "3.0": {}},
    "util": {"1.0": {}, "2.0": {}},
    "fast-lib": {"3.0": {}},
}
# What rules would say: lib 3.0 and util 2.0 have advisories; fast-lib is better still.
PENALTIES = {("lib", "3.0"): -0.2, ("util", "2.0"): -0.2, ("lib", "2.0"): -0.1}
BONUS = {"fast-lib": 0.3}


def run(trial: Trial) -> ScoredResolution | None:
    requirements = [trial.rewrite(r) for r in ["app"]]
    index = {name: dict(versions) for name, versions in INDEX.items()}
    index["app"] = {"1.0": {"requires": [trial.rewrite(r) for r in INDEX["app"]["1.0"]["requires"]]}}
    outcome = resolve(index, requirements, constraints=trial.constraints()).outcome
    pins = getattr(outcome, "pins", None)
    if pins is None:
        return None
    contributions = {}
    for name, version in pins.items():
        part = PENALTIES.get((name, version), 0.0) + BONUS.get(name, 0.0)
        if part:
            contributions[name] = part
    return ScoredResolution(
        score=sum(contributions.values()),
        pins=pins,
        contributions=contributions,
        movable=frozenset({"lib", "util"} & pins.keys()),
        alternatives=(Replacement("lib", "fast-lib", None, "rule"),) if "lib" in pins else (),
    )


def search(seed: int, max_trials: int) -> tuple[ImprovementSearch, list[Trial]]:
    first = run(Trial())
    assert first is not None
    engine = ImprovementSearch(first, seed=seed, max_trials=max_trials)
    trials = []
    while (trial := engine.propose()) is not None:
        trials.append(trial)
        engine.record(trial, run(trial))
    return engine, trials


def test_the_search_finds_the_best_resolution_and_is_reproducible() -> None:
    engine, trials = search(seed=7, max_trials=30)
    _, best = engine.best
    assert best.pins == {"app": "1.0", "fast-lib": "3.0", "util": "1.0"}
    assert best.score == pytest.approx(0.3)
    again, trials_again = search(seed=7, max_trials=30)
    assert trials == trials_again
    assert again.best == engine.best
    assert engine.stats.improvements >= 2


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("max_trials", [0, 1, 2, 5])
def test_the_search_never_returns_less_than_the_first(seed: int, max_trials: int) -> None:
    first = run(Trial())
    assert first is not None
    engine, trials = search(seed, max_trials)
    assert len(trials) <= max_trials
    assert engine.best[1].score >= first.score


def test_an_unsolvable_trial_is_recorded_and_skipped() -> None:
    first = ScoredResolution(
        score=-0.2, pins={"lib": "1.0"}, contributions={"lib": -0.2}, movable=frozenset({"lib"})
    )
    engine = ImprovementSearch(first, seed=0, max_trials=5)
    trial = engine.propose()
    assert trial == Trial(frozenset({("lib", "1.0")}))
    engine.record(trial, None)
    assert engine.stats.unsolvable == 1
    assert engine.best[1] is first
    assert engine.propose() is None  # nothing else to try from the best


def test_record_must_answer_the_last_proposal() -> None:
    first = ScoredResolution(score=0.0, pins={"lib": "1.0"}, movable=frozenset({"lib"}))
    engine = ImprovementSearch(first, seed=0)
    trial = engine.propose()
    assert trial is not None
    with pytest.raises(RuntimeError):
        engine.propose()
    with pytest.raises(RuntimeError):
        engine.record(Trial(), None)
