"""Data-driven resolver cases: each ``tests/resolver_cases/*.json`` is an index and a request.

Fields: ``index`` (see ``resolver_cases/driver.py``), ``requested``, optional ``constraints``,
``environment`` (overrides of a CPython 3.11.4 Linux environment) and ``options``; then either
``expected`` pins (or ``expected_any_of``) with optional non-empty ``extras``, or
``unsatisfiable``: phrases the report must contain. ``max_decisions`` bounds the decisions (a
count, not a time) and ``unvisited`` lists versions whose metadata must never be asked for,
which catches needless backtracking. Every case is also run with its requirements permuted.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from resolver_cases.driver import Run, resolve

from resolver import NoSolution, Resolution, ResolverOptions

CASES = Path(__file__).parent / "resolver_cases"


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def run_case(case: dict[str, Any], requested: list[str] | None = None) -> Run:
    return resolve(
        case["index"],
        case["requested"] if requested is None else requested,
        constraints=case.get("constraints", ()),
        environment=case.get("environment"),
        options=ResolverOptions(**case.get("options", {})),
    )


@pytest.fixture(params=sorted(CASES.glob("*.json")), ids=lambda path: path.stem)
def case(request: pytest.FixtureRequest) -> dict[str, Any]:
    return load(request.param)


def test_case(case: dict[str, Any]) -> None:
    run = run_case(case)
    if "unsatisfiable" in case:
        report = run.failure.report
        for phrase in case["unsatisfiable"]:
            assert phrase in report, report
    else:
        resolution = run.resolution
        if "expected_any_of" in case:
            assert resolution.pins in case["expected_any_of"]
        else:
            assert resolution.pins == case["expected"]
        extras = {name: sorted(extras) for name, extras in resolution.extras.items() if extras}
        assert extras == case.get("extras", {})
    stats = run.outcome.stats
    assert stats is not None
    if "max_decisions" in case:
        assert stats.decisions <= case["max_decisions"], stats
    asked = set(run.metadata_asked())
    for project, versions in case.get("unvisited", {}).items():
        visited = sorted(v for v in versions if (project, v) in asked)
        assert not visited, f"{project} {visited} were visited"


def test_order_does_not_matter(case: dict[str, Any]) -> None:
    reference = run_case(case)
    orders = list(itertools.permutations(case["requested"]))[:24]
    for order in orders:
        run = run_case(case, list(order))
        if isinstance(reference.outcome, Resolution):
            assert isinstance(run.outcome, Resolution)
            assert run.outcome.pins == reference.outcome.pins
            assert run.outcome.extras == reference.outcome.extras
        else:
            assert isinstance(run.outcome, NoSolution)
            assert run.outcome.report == reference.outcome.report
        assert run.outcome.stats is not None and reference.outcome.stats is not None
        assert run.outcome.stats.decisions == reference.outcome.stats.decisions


class TestResolution:
    def test_dependencies_say_who_requires_whom(self) -> None:
        run = run_case(load(CASES / "extras_transitive_multiple.json"))
        deps = run.resolution.dependencies
        assert deps["<root>"] == [("b", "b")]
        assert deps["b"] == [("a", "a[x,y]>=1")]
        assert deps["a"] == [("c", 'c; extra == "x"'), ("d", 'd; extra == "y" and python_version >= "3.8"')]

    def test_stats_count_the_work(self) -> None:
        stats = run_case(load(CASES / "simple_chain.json")).resolution.stats
        assert stats.decisions == 4  # root, a, b, c
        assert stats.conflicts == 0
        assert stats.candidate_requests == 3
        assert stats.metadata_requests >= 3
        assert stats.seconds > 0

    def test_learning_beats_chronological_backtracking(self) -> None:
        stats = run_case(load(CASES / "learning_same_version.json")).failure.stats
        assert stats is not None
        # Every a is tried once (30 versions, each needing its metadata) ...
        assert stats.metadata_requests <= 30 + 30 + 2 + 3 + 3
        # ... and never again for another combination of the unrelated x1..x3 (10**3 of them).
        assert stats.decisions <= 160 < 10**3

    def test_names_are_normalized(self) -> None:
        index = {"Foo_Bar": {"1.0": {"requires": ["Baz.Qux>=1"]}}, "baz-qux": {"1.0": {}}}
        assert resolve(index, ["FOO.bar"]).resolution.pins == {"baz-qux": "1.0", "foo-bar": "1.0"}

    def test_preference_breaks_ties_between_equal_versions(self) -> None:
        index = {"a": {"1.0": {"preference": 1.0}, "1.0.0": {"preference": 5.0}, "0.9": {"preference": 9.0}}}
        assert resolve(index, ["a"]).resolution.pins == {"a": "1.0.0"}

    def test_local_versions_and_equal_pins(self) -> None:
        index = {"torch": {"2.1.0": {}, "2.1.0+cpu": {}, "2.0.0": {}}}
        assert resolve(index, ["torch==2.1.0"]).resolution.pins == {"torch": "2.1.0+cpu"}
        assert resolve(index, ["torch===2.1.0"]).resolution.pins == {"torch": "2.1.0"}


class TestReports:
    def test_report_is_a_derivation(self) -> None:
        failure = run_case(load(CASES / "unsatisfiable_chain.json")).failure
        assert failure.report.startswith("Because ")
        assert failure.report.endswith("your requirements are unsatisfiable.")
        kinds = [i.kind for i in failure.incompatibilities]
        assert kinds[-1] == "derived" and "root" in kinds and "dependency" in kinds
        terminal = failure.incompatibilities[-1]
        assert terminal.terms == () and terminal.causes is not None

    def test_incompatibilities_are_data(self) -> None:
        failure = run_case(load(CASES / "requires_python_unsatisfiable.json")).failure
        (python,) = (i for i in failure.incompatibilities if i.kind == "requires-python")
        assert python.requires_python == ">=3.12"
        assert python.python_version == "3.11.4"
        (term,) = python.terms
        assert (term.project, term.positive, term.versions) == ("a", True, ("2.0", "2.1"))
        assert str(term) == "a>=2.0"

    def test_unavailable_metadata_is_named(self) -> None:
        index = {"a": {"1.0": {"unavailable": "HTTP 404 for the .metadata file"}}}
        report = resolve(index, ["a"]).failure.report
        assert "the metadata of a==1.0 is unavailable (HTTP 404 for the .metadata file)" in report

    def test_shared_derivations_get_line_numbers(self) -> None:
        index = {
            "a": {"1.0": {"requires": ["x>=2"]}, "2.0": {"requires": ["x>=2"]}},
            "b": {"1.0": {"requires": ["y>=2"]}},
            "x": {"1.0": {}, "2.0": {"requires": ["z<1"]}},
            "y": {"1.0": {}, "2.0": {"requires": ["z<1"]}},
            "z": {"0.5": {}, "1.0": {}},
        }
        report = resolve(index, ["a", "b", "z>=1"]).failure.report
        assert "your requirements are unsatisfiable" in report
        assert report.count("Because") + report.count("because") >= 2

    def test_max_steps_gives_up_clearly(self) -> None:
        case = load(CASES / "learning_same_version.json")
        case["options"] = {"max_steps": 10}
        failure = run_case(case).failure
        assert "gave up after" in failure.report and "max_steps" in failure.report
