"""Vetoes and skipped projects in the resolver: rules from outside the dependency data."""

from __future__ import annotations

import itertools

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version
from resolver_cases.driver import resolve

from resolver.models import Candidate
from resolver.units import Condition, Veto


def spec(project: str, text: str, index: str | None = None) -> Condition:
    specifier = SpecifierSet(text)

    def accepts(candidate: Candidate) -> bool:
        return specifier.contains(Version(candidate.version), prereleases=True) and (
            index is None or candidate.index == index
        )

    return Condition(project, accepts, f"{project}{text}")


INDEX = {
    "tensorflow": {
        "2.1.0": {"requires": ["h5py"]},
        "2.2.0": {"requires": ["h5py<3"]},
    },
    "h5py": {"2.10.0": {}, "3.1.0": {}},
    "app": {"1.0": {"requires": ["tensorflow~=2.1.0"]}},
}


def test_a_pair_veto_moves_the_other_package_whatever_the_order() -> None:
    veto = Veto((spec("tensorflow", "~=2.1.0"), spec("h5py", ">=3")), "h5py 3 breaks TF 2.1", "tf-h5py")
    for requested in itertools.permutations(["app", "h5py"]):
        pins = resolve(INDEX, list(requested), vetoes=[veto]).resolution.pins
        assert pins == {"app": "1.0", "tensorflow": "2.1.0", "h5py": "2.10.0"}
    # Without the veto, the newest h5py is taken.
    assert resolve(INDEX, ["app"]).resolution.pins["h5py"] == "3.1.0"


def test_a_veto_never_makes_a_resolution_valid_and_the_report_names_it() -> None:
    veto = Veto((spec("tensorflow", "~=2.1.0"), spec("h5py", ">=3")), "h5py 3 breaks TF 2.1", "tf-h5py")
    failure = resolve(INDEX, ["app", "h5py>=3"], vetoes=[veto]).failure
    assert "ruled out together by tf-h5py (h5py 3 breaks TF 2.1)" in failure.report
    assert any(i.kind == "vetoed" for i in failure.incompatibilities)


def test_a_one_project_veto_removes_versions_and_an_index_condition_only_its_builds() -> None:
    index = {"numpy": {"1.0": {"index": "public"}, "2.0": {"index": "avx2"}}}
    drop_avx2 = Veto((spec("numpy", "", index="avx2"),), "not for this machine", "no-avx2")
    assert resolve(index, ["numpy"], vetoes=[drop_avx2]).resolution.pins == {"numpy": "1.0"}
    drop_public = Veto((spec("numpy", "", index="public"),), "x", "no-public")
    assert resolve(index, ["numpy"], vetoes=[drop_public]).resolution.pins == {"numpy": "2.0"}


def test_a_veto_on_a_project_outside_the_graph_is_inert() -> None:
    veto = Veto((spec("tensorflow", ""), spec("pillow", "")), "never together", "x")
    assert resolve(INDEX, ["app"], vetoes=[veto]).resolution.pins["tensorflow"] == "2.1.0"


def test_a_veto_whose_condition_matches_no_candidate_is_inert() -> None:
    veto = Veto((spec("h5py", ">=9"),), "none", "x")
    assert resolve(INDEX, ["h5py"], vetoes=[veto]).resolution.pins == {"h5py": "3.1.0"}


def test_a_veto_registered_twice_under_one_key_is_one_veto() -> None:
    veto = Veto((spec("h5py", ">=3"),), "r", "x", key="group:1")
    run = resolve(INDEX, ["h5py"], vetoes=[veto, veto])
    assert run.resolution.pins == {"h5py": "2.10.0"}


def test_skipped_projects_leave_with_their_subgraph() -> None:
    index = {
        "app": {"1.0": {"requires": ["scipy", "six"]}},
        "scipy": {"1.0": {"requires": ["numpy"]}},
        "numpy": {"1.0": {}},
        "six": {"1.0": {}},
    }
    assert resolve(index, ["app"], skip=["SciPy"]).resolution.pins == {"app": "1.0", "six": "1.0"}
    assert resolve(index, ["app", "scipy"], skip=["scipy"]).resolution.pins == {"app": "1.0", "six": "1.0"}


def test_a_veto_needs_a_condition() -> None:
    with pytest.raises(ValueError, match="at least one condition"):
        Veto((), "r", "x")
