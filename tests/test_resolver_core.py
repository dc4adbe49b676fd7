"""The compiled core on its own: integer packages, index intervals, PubGrub steps."""

from __future__ import annotations

import pytest

from resolver._core import Solver


def solver_with(*sizes: int) -> Solver:
    """A solver whose root (package 0) must be selected, and packages 1.. with these sizes."""
    solver = Solver()
    solver.add_package(1, "")
    solver.add_incompatibility([(0, False, [0, 1])], "root must be selected")
    for number, size in enumerate(sizes, start=1):
        solver.add_package(size, f"p{number}")
    return solver


def decide_all(
    solver: Solver, dependencies: dict[tuple[int, int], list[tuple[int, list[int]]]]
) -> dict[int, int]:
    """Drive the solver over an in-memory graph: (package, version) -> [(dependency, bounds)]."""
    while True:
        terminal = solver.propagate()
        assert terminal < 0, f"unsatisfiable: {solver.incompatibility(terminal)}"
        package = solver.pick_package()
        if package < 0:
            return {p: solver.decided_version(p) for p in range(1, solver.n_packages)}
        (version,) = solver.newest_versions(package, 1)
        ids = [
            solver.add_dependency(package, version, dependency, bounds, "dep")
            for dependency, bounds in dependencies.get((package, version), [])
        ]
        solver.add_version(package, version, ids)


def test_newest_versions_are_chosen() -> None:
    solver = solver_with(3, 4)
    graph = {(0, 0): [(1, [0, 3])], (1, 2): [(2, [0, 2])]}
    assert decide_all(solver, graph) == {1: 2, 2: 1}
    assert solver.decisions == 3 and solver.conflicts == 0


def test_conflict_is_learned_and_backjumped() -> None:
    # root -> 1 (2 versions), 2 (3 versions); 1@1 needs 3@1, 1@0 needs 3@0; every 2 needs 3@0.
    # 1 is decided first (fewer versions): 1@1, then 3@1; no 2 fits, so PubGrub learns that 3@1
    # is out, backjumps over 1's decision and takes 1@0.
    solver = solver_with(2, 3, 2)
    graph = {
        (0, 0): [(1, [0, 2]), (2, [0, 3])],
        (1, 1): [(3, [1, 2])],
        (1, 0): [(3, [0, 1])],
        **{(2, v): [(3, [0, 1])] for v in range(3)},
    }
    assert decide_all(solver, graph) == {1: 0, 2: 2, 3: 0}
    assert solver.conflicts >= 1


def test_unsatisfiable_ends_in_a_terminal_incompatibility() -> None:
    solver = solver_with(2)
    solver.propagate()
    solver.add_version(0, 0, [solver.add_dependency(0, 0, 1, [1, 2], "needs 1@1")])
    solver.add_incompatibility([(1, True, [1, 2])], "1@1 is unusable")
    terminal = solver.propagate()
    assert terminal >= 0
    terms, payload, cause1, cause2 = solver.incompatibility(terminal)
    assert terms == [] or [p for p, _, _ in terms] == [0]
    assert payload is None and cause1 >= 0 and cause2 >= 0
    derivation = solver.derivation(terminal)
    assert derivation[-1] == terminal
    payloads = {solver.incompatibility(i)[1] for i in derivation}
    assert {"needs 1@1", "1@1 is unusable"} <= payloads


def test_dependencies_of_neighbouring_versions_merge() -> None:
    solver = solver_with(4, 3)
    first = solver.add_dependency(1, 3, 2, [1, 3], "a")
    second = solver.add_dependency(1, 2, 2, [1, 3], "b")
    assert second != first
    terms, payload, _, _ = solver.incompatibility(second)
    assert [(p, positive, list(bounds)) for p, positive, bounds in terms] == [
        (1, True, [2, 4]),
        (2, False, [1, 3]),
    ]
    assert payload == "a"  # the merged incompatibility keeps the first one's explanation
    different = solver.add_dependency(1, 1, 2, [0, 3], "c")
    assert solver.incompatibility(different)[0][0][2].tolist() == [1, 2]


def test_vacuous_and_self_dependencies() -> None:
    solver = solver_with(3)
    assert solver.add_dependency(1, 1, 1, [0, 3], "satisfied by itself") == -1
    unary = solver.add_dependency(1, 1, 1, [2, 3], "excludes itself")
    assert [(p, positive, list(b)) for p, positive, b in solver.incompatibility(unary)[0]] == [
        (1, True, [1, 2])
    ]
    assert solver.add_incompatibility([(1, True, [])], "never holds") == -1


def test_decision_order_prefers_pins_then_fewest_versions_then_name() -> None:
    solver = solver_with(5, 5, 5)
    solver.propagate()
    ids = [
        solver.add_dependency(0, 0, p, bounds, "") for p, bounds in [(1, [0, 5]), (2, [0, 3]), (3, [4, 5])]
    ]
    solver.add_version(0, 0, ids)
    solver.propagate()
    assert solver.pick_package() == 3  # one version left: a pin
    solver.add_version(3, 4, [])
    solver.propagate()
    assert solver.pick_package() == 2  # three versions left, against five
    assert solver.newest_versions(2, 5) == [2, 1, 0]


@pytest.mark.parametrize("bounds", [[1], [2, 1], [0, 9], [-1, 1]])
def test_bad_bounds_are_rejected(bounds: list[int]) -> None:
    solver = solver_with(3)
    with pytest.raises(ValueError, match="boundaries"):
        solver.add_incompatibility([(1, True, bounds)], "")
