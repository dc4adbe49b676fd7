"""Tests for the prescription linter and for deciding whether a specifier set is empty."""

from __future__ import annotations

import random
import textwrap
from typing import Any

import pytest
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

from prescriptions import is_satisfiable, lint, parse
from prescriptions.model import Namespace, Unit
from prescriptions.specifiers import conflicting_clauses, witness

FILE = "rules/tf/step.yaml"


def units_of(text: str) -> list[Unit[Any]]:
    units, problems = parse(textwrap.dedent(text), FILE, Namespace("thoth", "test"))
    assert problems == []
    return units


def lint_text(text: str) -> list[tuple[str, str]]:
    return [(problem.code, str(problem)) for problem in lint(units_of(text))]


# --- empty specifier sets ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "conflict"),
    [
        (">2.0,<2.0", (">2.0", "<2.0")),
        ("<1.0,>1.4", ("<1.0", ">1.4")),
        (">2.0.0,<2.0.0", (">2.0.0", "<2.0.0")),
        ("==1.0,!=1.0", ("==1.0", "!=1.0")),
        ("~=1.4,<1.4", ("~=1.4", "<1.4")),
        ("==1.2.*,!=1.2.*", ("==1.2.*", "!=1.2.*")),
        ("==1.0,>1.0", ("==1.0", ">1.0")),  # >1.0 excludes 1.0's local versions, which ==1.0 allows
        ("<0.dev0", ("<0.dev0",)),  # nothing sorts below 0.dev0
        (">=2.0rc1,<2.0", (">=2.0rc1", "<2.0")),  # <2.0 excludes 2.0's pre-releases
        (">1.0,<1.0.post1", (">1.0", "<1.0.post1")),  # >1.0 excludes 1.0's post-releases
        (">1.0.post2,<1.0.post3", (">1.0.post2", "<1.0.post3")),
        (">=1.2,<1.3,!=1.2.*", (">=1.2", "<1.3", "!=1.2.*")),
    ],
)
def test_empty_specifier_sets(text: str, conflict: tuple[str, ...]) -> None:
    specifier = SpecifierSet(text)
    assert not is_satisfiable(specifier)
    assert {str(clause) for clause in conflicting_clauses(specifier)} == set(conflict)


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("", "0"),
        (">=1.0,<2.0", "1.0"),
        ("!=1.0", "1.0.dev0"),
        ("<=1.0,>=1.0", "1.0"),
        (">2,<2.0.0.1", "2.0.0.0.999999999"),  # a release strictly between, not a post-release of 2
        (">1.0a1,<1.0a2", "1.0a2.dev0"),
        (">1!0,<1!0.0.1", "1!0.0.0.999999999"),
        ("~=2.1.0", "2.1.0"),
        ("===foo", "foo"),
    ],
)
def test_satisfiable_sets_have_a_witness(text: str, found: str) -> None:
    specifier = SpecifierSet(text)
    assert str(witness(specifier)) == found
    assert specifier.contains(found, prereleases=True)
    assert conflicting_clauses(specifier) == ()


def test_emptiness_agrees_with_exhaustive_checking_over_a_dense_grid() -> None:
    """The reasoning never calls a set empty when some version of a dense grid satisfies it."""
    rng = random.Random(5)
    grid = sorted(
        {
            Version(release + suffix)
            for release in (
                "0",
                "1",
                "1.0.0.1",
                "1.0.0.0.1",
                "1.0.1",
                "1.1",
                "1.2",
                "2",
                "2.0.0.1",
                "2.1",
                "3",
                "1!1",
            )
            for suffix in ("", ".dev0", "a1", "a1.dev0", "rc1", ".post0", ".post1", ".post1.dev0", "+local")
        }
    )
    versions = [
        "0",
        "1",
        "1.0",
        "1.0.1",
        "1.1",
        "2",
        "2.0",
        "2.0.0.1",
        "1.0a1",
        "1.0rc1",
        "1.0.post1",
        "1.0.dev0",
    ]
    operators = ["==", "!=", "<", "<=", ">", ">=", "~="]
    checked = 0
    for _ in range(1500):
        clauses = []
        for _ in range(rng.choice((2, 3))):
            operator, version = rng.choice(operators), rng.choice(versions)
            if rng.random() < 0.2:
                clauses.append(f"{rng.choice(('==', '!='))}{Version(version).base_version}.*")
            else:
                clauses.append(operator + version)
        try:
            specifier = SpecifierSet(",".join(clauses))
        except InvalidSpecifier:
            continue
        found = witness(specifier)
        satisfying = next(
            (version for version in grid if specifier.contains(version, prereleases=True)), None
        )
        if found is None:
            assert satisfying is None, f"{specifier} called empty, but {satisfying} satisfies it"
        else:
            assert specifier.contains(found, prereleases=True)
        checked += 1
    assert checked > 1000


def test_empty_specifier_problems_name_the_clauses_and_the_consequence() -> None:
    text = """\
        units:
          sieves:
          - name: TensorFlowCUDASieve
            type: sieve
            should_include:
              adviser_pipeline: true
              runtime_environments:
                cuda_version: "<1.0,>1.4"
                python_packages: [{name: pip, version: "==1.0,!=1.0"}]
            match:
            - package_version:
                name: tensorflow-gpu
                version: ">2.0.0,<2.0.0"
          steps:
          - name: S
            type: step
            should_include: {adviser_pipeline: true}
            match:
              package_version: {name: numpy}
              state: {resolved_dependencies: [{name: scipy, version: ">=1.2,<1.3,!=1.2.*"}]}
            run:
              justification: [{type: INFO, message: m, link: l, version_range: "<0.dev0"}]
        """
    assert lint_text(text) == [
        (
            "empty-specifier",
            f'{FILE}:8: units.sieves[0].should_include.runtime_environments.cuda_version: "<1.0,>1.4"'
            " matches no version,"
            ' so the unit never registers: nothing is both <1.0 and >1.4 (a comma means "and": to match'
            " outside a"
            " range, write one entry per side)",
        ),
        (
            "empty-specifier",
            f"{FILE}:9: units.sieves[0].should_include.runtime_environments.python_packages[0].version:"
            ' "==1.0,!=1.0"'
            " matches no version, so the unit never registers: nothing is both ==1.0 and !=1.0",
        ),
        (
            "empty-specifier",
            f'{FILE}:13: units.sieves[0].match[0].package_version.version: ">2.0.0,<2.0.0" matches no'
            " version,"
            ' so this match entry never matches: nothing is both >2.0.0 and <2.0.0 (a comma means "and": to'
            " match"
            " outside a range, write one entry per side)",
        ),
        (
            "empty-specifier",
            f'{FILE}:20: units.steps[0].match.state.resolved_dependencies[0].version: ">=1.2,<1.3,!=1.2.*"'
            " matches no"
            " version, so this match entry never matches: its clauses >=1.2, <1.3, !=1.2.* exclude each"
            " other",
        ),
        (
            "empty-specifier",
            f'{FILE}:22: units.steps[0].run.justification[0].version_range: "<0.dev0" matches no version:'
            " nothing is <0.dev0",
        ),
    ]


# --- units that can never register -------------------------------------------------------------------


def test_adviser_pipeline_not_true() -> None:
    text = """\
        units:
          sieves:
          - name: NoPyPIIndexSieve
            type: sieve
            should_include: {labels: {pypi-index: disabled}}
            match: {package_version: {index_url: "https://index.example/simple"}}
          - name: MonkeySieve
            type: sieve
            should_include: {dependency_monkey_pipeline: true}
            match: {package_version: {name: numpy}}
          - name: Disabled
            type: sieve
            should_include: {times: 0}
            match: {package_version: {name: numpy}}
        """
    assert lint_text(text) == [
        (
            "never-registers",
            f"{FILE}:5: units.sieves[0].should_include.adviser_pipeline: adviser_pipeline is not true, so"
            " the unit never"
            " registers in a resolve (Thoth's default is false); add adviser_pipeline: true",
        ),
        (
            "never-registers",
            f"{FILE}:9: units.sieves[1].should_include.adviser_pipeline: adviser_pipeline is not true, so"
            " the unit"
            " registers only in Dependency Monkey runs, which index-proxy does not have (Thoth's default is"
            " false);"
            " add adviser_pipeline: true",
        ),
    ]


def test_every_recommendation_type_negated() -> None:
    text = """\
        units:
          wraps:
          - name: W
            type: wrap
            should_include:
              adviser_pipeline: true
              recommendation_types: {not: [latest, stable, testing, performance, security]}
            run: {}
        """
    assert lint_text(text) == [
        (
            "never-registers",
            f"{FILE}:7: units.wraps[0].should_include.recommendation_types: every recommendation type is"
            " negated,"
            " so the unit never registers",
        )
    ]


def test_contradicting_hardware_entries() -> None:
    text = """\
        units:
          boots:
          - name: B
            type: boot
            should_include:
              adviser_pipeline: true
              runtime_environments:
                hardware:
                - {cpu_flags: [avx2], gpu_models: [null], cpu_families: [6]}
                - {cpu_flags: {not: [avx2]}, cpu_families: [23]}
                - {gpu_models: {not: [null]}}
            run: {}
          - name: Fine
            type: boot
            should_include:
              adviser_pipeline: true
              runtime_environments:
                hardware:
                - {cpu_flags: [avx2, avx512]}
                - {cpu_flags: {not: [avx512]}, cpu_families: {not: [23]}}
                - {cpu_families: [6, 23]}
            run: {}
        """
    assert lint_text(text) == [
        (
            "never-registers",
            f"{FILE}:10: units.boots[0].should_include.runtime_environments.hardware[1].cpu_families:"
            " hardware entries"
            " 0, 1 allow no common cpu_families; every entry must match, so the unit never registers",
        ),
        (
            "never-registers",
            f"{FILE}:10: units.boots[0].should_include.runtime_environments.hardware[1].cpu_flags: hardware"
            " entry 1"
            " forbids what entry 0 requires (cpu_flags [avx2]); every entry must match, so the unit never"
            " registers",
        ),
        (
            "never-registers",
            f"{FILE}:11: units.boots[0].should_include.runtime_environments.hardware[2].gpu_models: hardware"
            " entry 2"
            " forbids what entry 0 requires (gpu_models [null]); every entry must match, so the unit never"
            " registers",
        ),
    ]


def test_dependencies_missing_blocked_and_cyclic() -> None:
    text = """\
        units:
          boots:
          - name: Base
            type: boot
            should_include: {adviser_pipeline: true}
            run: {}
          - name: Disabled
            type: boot
            should_include: {adviser_pipeline: true, times: 0}
            run: {}
          steps:
          - name: NeedsBase
            type: step
            should_include: {adviser_pipeline: true, dependencies: {boots: [thoth.Base]}}
            match: {package_version: {name: a}}
            run: {score: 0.1}
          - name: Unqualified
            type: step
            should_include: {adviser_pipeline: true, dependencies: {boots: [Base]}}
            match: {package_version: {name: a}}
            run: {score: 0.1}
          - name: NeedsDisabled
            type: step
            should_include: {adviser_pipeline: true, dependencies: {boots: [thoth.Disabled]}}
            match: {package_version: {name: a}}
            run: {score: 0.1}
          - name: Transitive
            type: step
            should_include: {adviser_pipeline: true, dependencies: {steps: [thoth.NeedsDisabled]}}
            match: {package_version: {name: a}}
            run: {score: 0.1}
          - name: Ping
            type: step
            should_include: {adviser_pipeline: true, dependencies: {steps: [thoth.Pong]}}
            match: {package_version: {name: a}}
            run: {score: 0.1}
          - name: Pong
            type: step
            should_include: {adviser_pipeline: true, dependencies: {steps: [thoth.Ping]}}
            match: {package_version: {name: a}}
            run: {score: 0.1}
        """
    assert lint_text(text) == [
        (
            "never-registers",
            f'{FILE}:19: units.steps[1].should_include.dependencies.boots: depends on boot "Base", which is'
            " not loaded,"
            ' so the unit never registers; did you mean "thoth.Base"?',
        ),
        (
            "never-registers",
            f'{FILE}:24: units.steps[2].should_include.dependencies.boots: depends on boot "thoth.Disabled",'
            " which never"
            " registers, so the unit never registers",
        ),
        (
            "never-registers",
            f"{FILE}:29: units.steps[3].should_include.dependencies.steps: depends on step"
            ' "thoth.NeedsDisabled", which never'
            " registers, so the unit never registers",
        ),
        (
            "never-registers",
            f"{FILE}:34: units.steps[4].should_include.dependencies: its dependencies wait on each other (a"
            " cycle),"
            " so the unit never registers",
        ),
        (
            "never-registers",
            f"{FILE}:39: units.steps[5].should_include.dependencies: its dependencies wait on each other (a"
            " cycle),"
            " so the unit never registers",
        ),
    ]


# --- names, run, duplicates --------------------------------------------------------------------------


def test_non_normalized_names_thoths_schema_let_through() -> None:
    text = """\
        units:
          boots:
          - name: B
            type: boot
            should_include: {adviser_pipeline: true}
            match: {package_name: Flask}
            run: {}
          sieves:
          - name: S
            type: sieve.SkipPackage
            should_include: {adviser_pipeline: true}
            match: [{package_name: enum34}, {package_name: Typing_Extensions}]
        """
    assert lint_text(text) == [
        (
            "non-normalized-name",
            f'{FILE}:6: units.boots[0].match.package_name: "Flask" is not a normalized package name; write'
            ' "flask"',
        ),
        (
            "non-normalized-name",
            f'{FILE}:12: units.sieves[0].match[1].package_name: "Typing_Extensions" is not a normalized'
            " package name;"
            ' write "typing-extensions"',
        ),
    ]


def test_conflicting_run_actions_and_score_range() -> None:
    text = """\
        units:
          boots:
          - name: B
            type: boot
            should_include: {adviser_pipeline: true}
            run: {not_acceptable: x, eager_stop_pipeline: y}
          steps:
          - name: S
            type: step
            should_include: {adviser_pipeline: true}
            match: {package_version: {name: numpy}}
            run:
              score: 0.5
              not_acceptable: vetoed
              justification: [{type: INFO, message: m, link: l}]
          - name: High
            type: step
            should_include: {adviser_pipeline: true}
            match: {package_version: {name: numpy}}
            run: {score: 2}
          pseudonyms:
          - name: P
            type: pseudonym
            should_include: {adviser_pipeline: true}
            match: {package_version: {name: tensorflow}}
            run:
              yield:
                yield_matched_version: true
                package_version: {name: intel-tensorflow, locked_version: "==2.4"}
        """
    assert lint_text(text) == [
        (
            "conflicting-run",
            f"{FILE}:6: units.boots[0].run: not_acceptable and eager_stop_pipeline together: Thoth left this"
            " undefined;"
            " keep one",
        ),
        (
            "conflicting-run",
            f"{FILE}:13: units.steps[0].run: score has no effect: not_acceptable ends the step before a"
            " score counts",
        ),
        (
            "conflicting-run",
            f"{FILE}:13: units.steps[0].run: justification is never reported: not_acceptable ends the step"
            " first",
        ),
        ("score-range", f"{FILE}:20: units.steps[1].run: score 2 is outside [-1, 1]; it is clipped to 1"),
        (
            "conflicting-run",
            f"{FILE}:27: units.pseudonyms[0].run: yield_matched_version and locked_version exclude each"
            " other; keep one",
        ),
    ]


def test_duplicate_names_in_units_given_to_lint() -> None:
    text = "units: {wraps: [{name: W, type: wrap, should_include: {adviser_pipeline: true}, run: {}}]}"
    problems = lint(units_of(text) + units_of(text))
    assert [(p.code, str(p)) for p in problems] == [
        (
            "duplicate-name",
            f'{FILE}:1: units.wraps[0].name: wrap name "thoth.W" is taken (first at {FILE}:1);'
            " names must be unique per unit list within a prescription namespace",
        )
    ]


def test_clean_units_have_no_problems() -> None:
    text = """\
        units:
          steps:
          - name: S
            type: step
            should_include: {adviser_pipeline: true, recommendation_types: {not: [latest]}}
            match: {package_version: {name: numpy, version: "<1.0,>=0.5"}}
            run: {score: -1.0}
        """
    assert lint_text(text) == []
