"""The sans-IO contract: batched requests, prefetches, unavailable metadata, misuse."""

from __future__ import annotations

import importlib
import random
import sys
from collections.abc import Iterator

import pytest
from resolver_cases.driver import DEFAULT_ENVIRONMENT, feed, normalize_index, resolve

from resolver import (
    Candidate,
    NoSolution,
    Request,
    Resolution,
    Resolver,
    ResolverUsageError,
)

# Ten projects, each with three versions and a dependency of its own.
WIDE = {
    **{f"p{i}": {f"{v}.0": {"requires": [f"q{i}>={v}"]} for v in (1, 2, 3)} for i in range(10)},
    **{f"q{i}": {f"{v}.0": {} for v in (1, 2, 3)} for i in range(10)},
}


def test_requests_come_in_batches() -> None:
    run = resolve(WIDE, [f"p{i}" for i in range(10)])
    assert run.resolution.pins == {
        **{f"p{i}": "3.0" for i in range(10)},
        **{f"q{i}": "3.0" for i in range(10)},
    }
    first, second = run.requests[:2]
    assert len(first.projects) == 10 and not first.metadata
    # All ten newest versions are asked for at once, not one per step.
    assert len(second.metadata) == 10
    assert max(len(r.metadata) for r in run.requests) >= 5
    # Depth 2 takes two more round trips, however wide the graph is.
    assert len(run.requests) <= 5


def test_nothing_is_asked_twice_and_no_request_is_empty() -> None:
    run = resolve(WIDE, [f"p{i}" for i in range(10)])
    projects = [p for r in run.requests for p in r.projects]
    metadata = run.metadata_asked()
    assert len(projects) == len(set(projects)) == 20
    assert len(metadata) == len(set(metadata))
    assert all(r.projects or r.metadata for r in run.requests)
    stats = run.resolution.stats
    assert (stats.candidate_requests, stats.metadata_requests) == (20, len(metadata))


def test_candidates_arriving_prefetch_the_likely_pick() -> None:
    index = {"a": {"1.0": {}, "2.0": {}, "3.0b1": {}, "2.5": {"requires_python": ">=4"}}}
    run = resolve(index, ["a<3"])
    assert run.requests == [Request(projects=("a",)), Request(metadata=(("a", "2.0"),))]


def test_conflicts_prefetch_the_next_versions() -> None:
    index = {
        "a": {f"{v}.0": {"requires": ["b==1.0"] if v == 1 else ["b==9.0"]} for v in range(1, 8)},
        "b": {"1.0": {}},
    }
    run = resolve(index, ["a"])
    assert run.resolution.pins == {"a": "1.0", "b": "1.0"}
    assert max(len(r.metadata) for r in run.requests[2:]) >= 2
    assert len(run.requests) < 7


def test_answer_order_within_a_batch_does_not_matter() -> None:
    index = normalize_index(WIDE)
    results = []
    for seed in range(5):
        resolver = Resolver([f"p{i}" for i in range(10)], environment=DEFAULT_ENVIRONMENT)
        shuffle = random.Random(seed).shuffle
        while not isinstance(step := resolver.step(), Resolution):
            projects, metadata = list(step.projects), list(step.metadata)
            shuffle(projects)
            shuffle(metadata)
            feed(resolver, index, Request(tuple(projects), tuple(metadata)))
        results.append(step.pins)
    assert all(r == results[0] for r in results)


class UnavailableProvider:
    """Answers from an index, except that some metadata cannot be had."""

    def __init__(self, index: dict, broken: set[tuple[str, str]]) -> None:
        self.index = normalize_index(index)
        self.broken = broken
        self.reported: list[tuple[str, str]] = []

    def run(self, resolver: Resolver) -> Resolution:
        while not isinstance(step := resolver.step(), Resolution):
            for project in step.projects:
                resolver.provide_candidates(project, [Candidate(v) for v in self.index.get(project, {})])
            for project, version in step.metadata:
                if (project, version) in self.broken:
                    self.reported.append((project, version))
                    resolver.metadata_unavailable(project, version, "the upstream returned HTTP 503")
                else:
                    resolver.provide_metadata(
                        project, version, self.index[project][version].get("requires", [])
                    )
        return step


def test_metadata_unavailable_rules_the_version_out() -> None:
    index = {"a": {"1.0": {"requires": ["b"]}, "2.0": {"requires": ["b"]}}, "b": {"1.0": {}}}
    provider = UnavailableProvider(index, {("a", "2.0")})
    resolution = provider.run(Resolver(["a"], environment=DEFAULT_ENVIRONMENT))
    assert resolution.pins == {"a": "1.0", "b": "1.0"}
    assert provider.reported == [("a", "2.0")]


def test_metadata_unavailable_everywhere_is_reported() -> None:
    index = {"a": {"1.0": {}, "2.0": {}}}
    provider = UnavailableProvider(index, {("a", "1.0"), ("a", "2.0")})
    with pytest.raises(NoSolution) as failure:
        provider.run(Resolver(["a"], environment=DEFAULT_ENVIRONMENT))
    assert "is unavailable (the upstream returned HTTP 503)" in failure.value.report
    assert {i.kind for i in failure.value.incompatibilities} >= {"unavailable", "root", "derived"}


def test_invalid_metadata_makes_the_version_unusable() -> None:
    index = {
        "a": {"1.0": {}, "2.0": {"requires": ["b >= = 2"]}, "3.0": {"requires": ["c @ https://x/c.whl"]}}
    }
    assert resolve(index, ["a"]).resolution.pins == {"a": "1.0"}
    report = resolve(index, ["a>=2"]).failure.report
    assert "invalid requirement 'b >= = 2'" in report
    assert "direct URL requirement" in report


@pytest.fixture
def resolver() -> Iterator[Resolver]:
    yield Resolver(["a"], environment=DEFAULT_ENVIRONMENT)


class TestMisuse:
    def test_unanswered_request_is_an_error_not_a_deadlock(self, resolver: Resolver) -> None:
        assert resolver.step() == Request(projects=("a",))
        with pytest.raises(ResolverUsageError, match="waiting for the candidates of a"):
            resolver.step()

    def test_candidates_twice(self, resolver: Resolver) -> None:
        resolver.provide_candidates("a", [Candidate("1.0")])
        with pytest.raises(ResolverUsageError, match="already provided"):
            resolver.provide_candidates("A", [Candidate("1.0")])

    def test_metadata_for_unknown_version(self, resolver: Resolver) -> None:
        resolver.provide_candidates("a", [Candidate("1.0")])
        with pytest.raises(ResolverUsageError, match="not a candidate version"):
            resolver.provide_metadata("a", "2.0", [])
        with pytest.raises(ResolverUsageError, match="no candidates were provided for b"):
            resolver.metadata_unavailable("b", "1.0", "gone")

    def test_incomplete_environment(self) -> None:
        with pytest.raises(ResolverUsageError, match="lacks python_full_version"):
            Resolver(
                ["a"],
                environment={k: v for k, v in DEFAULT_ENVIRONMENT.items() if k != "python_full_version"},
            )

    def test_bad_requirements(self) -> None:
        with pytest.raises(ResolverUsageError, match="invalid requirement"):
            Resolver(["a >= = 1"], environment=DEFAULT_ENVIRONMENT)
        with pytest.raises(ResolverUsageError, match="direct URL"):
            Resolver(["a @ https://example.org/a-1.0-py3-none-any.whl"], environment=DEFAULT_ENVIRONMENT)

    def test_outcome_is_final(self, resolver: Resolver) -> None:
        resolver.step()
        resolver.provide_candidates("a", [])
        with pytest.raises(NoSolution) as first:
            resolver.step()
        with pytest.raises(NoSolution) as again:
            resolver.step()
        assert again.value is first.value


def test_missing_core_says_how_to_build_it(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "resolver" or m.startswith("resolver.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "resolver._core", None)
    with pytest.raises(
        ImportError, match=r"compiled core is missing: run `pip install -e \.` or `make install`"
    ):
        importlib.import_module("resolver")
