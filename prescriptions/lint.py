"""The linter: defects Thoth's schema let through and its rule database shipped with.

``lint(units)`` reports, for units that loaded (schema problems come from the loader):

- ``duplicate-name``: two units of one list with the same full name;
- ``empty-specifier``: a specifier set no version satisfies (``">2.0,<2.0"``; 14 TensorFlow
  CUDA sieves meant "outside the range" and filtered nothing);
- ``never-registers``: a ``should_include`` that cannot hold in a resolve: ``adviser_pipeline`` not
  true (Thoth's default, which silently disabled its index sieves), every recommendation type
  negated, hardware entries that require and forbid the same values (Thoth requires every entry to
  match), dependencies on units that are missing, never register, or wait on each other;
- ``non-normalized-name``: package names Thoth's schema did not check (boot and
  ``sieve.SkipPackage`` ``package_name``);
- ``conflicting-run``: run actions that exclude each other or can never take effect;
- ``score-range``: a step score outside [-1, 1] (it is clipped).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from packaging.specifiers import Specifier
from packaging.utils import canonicalize_name

from prescriptions._yaml import quote
from prescriptions.model import (
    RECOMMENDATION_TYPES,
    Bucket,
    Hardware,
    OneOf,
    PackageVersion,
    Pseudonym,
    PseudonymRun,
    Step,
    StepRun,
    Unit,
    VersionSpec,
)
from prescriptions.problems import Problem, sort_problems
from prescriptions.specifiers import conflicting_clauses, witness

__all__ = ["duplicates", "lint"]


def __dir__() -> list[str]:
    return __all__


def lint(units: Iterable[Unit[Any]]) -> list[Problem]:
    """Every defect in *units*, in file order."""
    units = list(units)
    problems: list[Problem] = []
    problems += [problem for _, problem in duplicates(units)]
    never: set[tuple[Bucket, str]] = set()
    for unit in units:
        unit_problems = list(_unit_problems(unit))
        problems += unit_problems
        if unit.should_include.times == 0 or any(
            problem.code in ("never-registers", "empty-specifier") and ".should_include." in problem.key
            for problem in unit_problems
        ):
            never.add((unit.bucket, unit.name))
    problems += _dependency_problems(units, never)
    return sort_problems(problems)


def duplicates(units: Iterable[Unit[Any]]) -> list[tuple[Unit[Any], Problem]]:
    """(unit, problem) for every unit whose list already has a unit of its full name."""
    first: dict[tuple[Bucket, str], Unit[Any]] = {}
    found = []
    for unit in units:
        earlier = first.setdefault((unit.bucket, unit.name), unit)
        if earlier is not unit:
            message = (
                f"{unit.bucket[:-1]} name {quote(unit.name)} is taken"
                f" (first at {earlier.file}:{earlier.line});"
                " names must be unique per unit list within a prescription namespace"
            )
            found.append((unit, Problem(unit.file, unit.line, f"{unit.key}.name", message, "duplicate-name")))
    return found


def _unit_problems(unit: Unit[Any]) -> Iterator[Problem]:
    yield from _specifier_problems(unit)
    yield from _registration_problems(unit)
    yield from _name_problems(unit)
    yield from _run_problems(unit)


# --- empty specifiers --------------------------------------------------------------------------------

_MATCH = "so this match entry never matches"
_REGISTER = "so the unit never registers"


def _specifier_problems(unit: Unit[Any]) -> Iterator[Problem]:
    for key, spec, consequence in _version_specs(unit):
        if witness(spec.specifier) is not None:
            continue
        clauses = sorted(conflicting_clauses(spec.specifier), key=lambda clause: spec.text.find(str(clause)))
        if len(clauses) == 1:
            why = f"nothing is {clauses[0]}"
        elif len(clauses) == 2:
            why = f"nothing is both {clauses[0]} and {clauses[1]}"
            if _is_range(clauses):
                why += ' (a comma means "and": to match outside a range, write one entry per side)'
        else:
            why = f"its clauses {', '.join(map(str, clauses))} exclude each other"
        tail = f", {consequence}" if consequence else ""
        yield Problem(
            unit.file,
            spec.line,
            key,
            f"{quote(spec.text)} matches no version{tail}: {why}",
            "empty-specifier",
        )


def _is_range(clauses: list[Specifier]) -> bool:
    operators = {clause.operator for clause in clauses}
    return bool(operators & {">", ">="}) and bool(operators & {"<", "<="})


def _version_specs(unit: Unit[Any]) -> Iterator[tuple[str, VersionSpec, str]]:
    """(key, specifier, what an empty one means) for every specifier in *unit*."""

    def packages(
        key: str, entries: Iterable[PackageVersion], field: str = ""
    ) -> Iterator[tuple[str, VersionSpec, str]]:
        for position, package in enumerate(entries):
            if package.version is not None:
                yield f"{key}[{position}]{field}.version", package.version, _MATCH

    for match in unit.match:
        key = f"{unit.key}.{match.key}"
        if match.package_version is not None and match.package_version.version is not None:
            yield f"{key}.package_version.version", match.package_version.version, _MATCH
        if match.state is not None:
            yield from packages(f"{key}.state.resolved_dependencies", match.state.resolved_dependencies)
            yield from packages(f"{key}.state.package_version_from", match.state.package_version_from)
        yield from packages(f"{key}.group", match.group, ".package_version")
    for position, justification in enumerate(getattr(unit.run, "justification", ())):
        if justification.version_range is not None:
            yield f"{unit.key}.run.justification[{position}].version_range", justification.version_range, ""
    environments = unit.should_include.runtime_environments
    if environments is None:
        return
    key = f"{unit.key}.should_include.runtime_environments"
    for name in (
        "python_version",
        "cuda_version",
        "cudnn_version",
        "mkl_version",
        "openblas_version",
        "openmpi_version",
    ):
        value = getattr(environments, name)
        if isinstance(value, VersionSpec):
            yield f"{key}.{name}", value, _REGISTER
    if environments.python_packages is not None and not environments.python_packages.negated:
        for position, package in enumerate(environments.python_packages.values):
            if package.version is not None:
                yield f"{key}.python_packages[{position}].version", package.version, _REGISTER


# --- registration ------------------------------------------------------------------------------------


def _registration_problems(unit: Unit[Any]) -> Iterator[Problem]:
    gate = unit.should_include
    key = f"{unit.key}.should_include"
    if gate.times == 0:
        return  # switched off on purpose
    if not gate.adviser_pipeline:
        where = (
            "registers only in Dependency Monkey runs, which index-proxy does not have"
            if gate.dependency_monkey_pipeline
            else "never registers in a resolve"
        )
        yield Problem(
            unit.file,
            gate.line,
            f"{key}.adviser_pipeline",
            f"adviser_pipeline is not true, so the unit {where} (Thoth's default is false); "
            "add adviser_pipeline: true",
            "never-registers",
        )
    types = gate.recommendation_types
    if types is not None and types.negated and set(RECOMMENDATION_TYPES) <= set(types.values):
        yield Problem(
            unit.file,
            types.line,
            f"{key}.recommendation_types",
            "every recommendation type is negated, so the unit never registers",
            "never-registers",
        )
    environments = gate.runtime_environments
    if environments is not None and environments.hardware:
        yield from _hardware_problems(unit, environments.hardware, f"{key}.runtime_environments.hardware")


def _hardware_problems(unit: Unit[Any], entries: tuple[Hardware, ...], key: str) -> Iterator[Problem]:
    # Thoth requires every hardware entry to match, so two entries on the same field are both required.
    for field in ("cpu_families", "cpu_models", "gpu_models", "cpu_flags"):
        stated = [(position, getattr(entry, field)) for position, entry in enumerate(entries)]
        lists: list[tuple[int, OneOf[Any]]] = [
            (position, value) for position, value in stated if value is not None
        ]
        positive = [(position, value) for position, value in lists if not value.negated]
        negative = [(position, value) for position, value in lists if value.negated]
        for (p_position, p_value), (n_position, n_value) in ((p, n) for p in positive for n in negative):
            same = set(p_value.values) == set(n_value.values)
            # Membership fields: required to be one of the list and none of the other.
            contradicts = same or (field != "cpu_flags" and set(p_value.values) <= set(n_value.values))
            if contradicts:
                shown = ", ".join("null" if value is None else str(value) for value in p_value.values)
                yield Problem(
                    unit.file,
                    entries[n_position].line,
                    f"{key}[{n_position}].{field}",
                    f"hardware entry {n_position} forbids what entry {p_position} requires ({field} "
                    f"[{shown}]); every entry must match, so the unit never registers",
                    "never-registers",
                )
        if field != "cpu_flags" and len(positive) > 1:
            common = set.intersection(*(set(value.values) for _, value in positive))
            if not common:
                position, _value = positive[-1]
                yield Problem(
                    unit.file,
                    entries[position].line,
                    f"{key}[{position}].{field}",
                    f"hardware entries {', '.join(str(p) for p, _ in positive)} allow no common {field}; "
                    "every entry must match, so the unit never registers",
                    "never-registers",
                )


def _dependency_problems(units: list[Unit[Any]], never: set[tuple[Bucket, str]]) -> Iterator[Problem]:
    known = {(unit.bucket, unit.name) for unit in units}
    by_key = {(unit.bucket, unit.name): unit for unit in units}
    blocked: set[tuple[Bucket, str]] = set(never)
    reported: list[Problem] = []
    # Units whose dependencies are missing or never register cannot register either, transitively.
    changed = True
    while changed:
        changed = False
        for unit in units:
            own = (unit.bucket, unit.name)
            dependencies = unit.should_include.dependencies
            if own in blocked or dependencies is None:
                continue
            for bucket, names in dependencies.items():
                cause = next(
                    (name for name in names if (bucket, name) not in known or (bucket, name) in blocked), None
                )
                if cause is None:
                    continue
                hint = ""
                if (bucket, cause) not in known:
                    similar = sorted(name for b, name in known if b == bucket and name.endswith(f".{cause}"))
                    hint = f"; did you mean {quote(similar[0])}?" if similar else ""
                    why = "which is not loaded"
                else:
                    why = "which never registers"
                reported.append(
                    Problem(
                        unit.file,
                        dependencies.line,
                        f"{unit.key}.should_include.dependencies.{bucket}",
                        f"depends on {bucket[:-1]} {quote(cause)}, {why}, so the unit never registers{hint}",
                        "never-registers",
                    )
                )
                blocked.add(own)
                changed = True
                break
    # What is left unincluded after including everything includable waits on a cycle.
    included = {
        key for key in known if key not in blocked and by_key[key].should_include.dependencies is None
    }
    changed = True
    while changed:
        changed = False
        for key in known - blocked - included:
            dependencies = by_key[key].should_include.dependencies
            assert dependencies is not None
            if all((bucket, name) in included for bucket, names in dependencies.items() for name in names):
                included.add(key)
                changed = True
    for key in sorted(known - blocked - included):
        unit = by_key[key]
        reported.append(
            Problem(
                unit.file,
                unit.should_include.line,
                f"{unit.key}.should_include.dependencies",
                "its dependencies wait on each other (a cycle), so the unit never registers",
                "never-registers",
            )
        )
    yield from reported


# --- names and run -----------------------------------------------------------------------------------


def _name_problems(unit: Unit[Any]) -> Iterator[Problem]:
    for match in unit.match:
        name = match.package_name
        if name is not None and canonicalize_name(name) != name:
            yield Problem(
                unit.file,
                match.line,
                f"{unit.key}.{match.key}.package_name",
                f"{quote(name)} is not a normalized package name; write {quote(canonicalize_name(name))}",
                "non-normalized-name",
            )


def _run_problems(unit: Unit[Any]) -> Iterator[Problem]:
    run = unit.run
    key = f"{unit.key}.run"

    def problem(message: str, code: str = "conflicting-run") -> Problem:
        return Problem(unit.file, run.line, key, message, code)

    stops = [name for name in ("not_acceptable", "eager_stop_pipeline") if getattr(run, name, None)]
    if len(stops) == 2:
        yield problem("not_acceptable and eager_stop_pipeline together: Thoth left this undefined; keep one")
    if isinstance(unit, Step) and isinstance(run, StepRun):
        if stops and run.score is not None:
            yield problem(f"score has no effect: {stops[0]} ends the step before a score counts")
        if stops and run.justification:
            yield problem(f"justification is never reported: {stops[0]} ends the step first")
        if run.score is not None and not -1.0 <= run.score <= 1.0:
            clipped = max(-1.0, min(1.0, run.score))
            yield problem(
                f"score {run.score:g} is outside [-1, 1]; it is clipped to {clipped:g}", "score-range"
            )
    if (
        isinstance(unit, Pseudonym)
        and isinstance(run, PseudonymRun)
        and run.yield_matched_version
        and run.yield_package.locked_version is not None
    ):
        yield problem("yield_matched_version and locked_version exclude each other; keep one")
