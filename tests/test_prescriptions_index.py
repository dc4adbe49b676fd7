"""Tests for compiling units into per-package instances and the index that looks them up."""

from __future__ import annotations

import pickle
import textwrap
from pathlib import Path
from typing import Any

from prescriptions import CompiledUnit, UnitIndex, compile_units, load, parse
from prescriptions.model import Namespace, Unit

TREE = Path(__file__).parent / "prescription_cases" / "tree"


def units_of(text: str) -> list[Unit[Any]]:
    units, problems = parse(textwrap.dedent(text), "rules.yaml", Namespace("thoth", "test"))
    assert problems == []
    return units


def test_one_instance_per_match_entry_keyed_by_package() -> None:
    units = units_of(
        """\
        units:
          boots:
          - {name: Any, type: boot, should_include: {}, run: {}}
          - {name: Flask, type: boot, should_include: {}, match: [{package_name: Flask}, {}], run: {}}
          sieves:
          - name: Cuda
            type: sieve
            should_include: {}
            match: [{package_version: {name: tensorflow}}, {package_version: {name: tensorflow-gpu}}]
          - {name: Index, type: sieve, should_include: {}, match: {package_version: {index_url: {not: "https://index.example/simple"}}}}
          - {name: Skip, type: sieve.SkipPackage, should_include: {}, match: {package_name: enum34}}
          strides:
          - name: Stride
            type: stride
            should_include: {}
            match: {state: {resolved_dependencies: [{version: ">1"}, {name: werkzeug}]}}
            run: {}
          wraps:
          - name: Notes
            type: wrap.GHReleaseNotes
            should_include: {}
            match: {state: {resolved_dependencies: {name: flask}}}
            run: {release_notes: {organization: pallets, repository: flask}}
          - {name: Disabled, type: wrap, should_include: {times: 0}, run: {}}
        """
    )
    compiled = compile_units(units)
    assert [(instance.unit.name, instance.package) for instance in compiled] == [
        ("thoth.Any", None),
        ("thoth.Flask", "flask"),  # package_name normalized for the lookup
        ("thoth.Flask", None),
        ("thoth.Cuda", "tensorflow"),
        ("thoth.Cuda", "tensorflow-gpu"),
        ("thoth.Index", None),
        ("thoth.Skip", "enum34"),
        ("thoth.Stride", "werkzeug"),  # the first package its state needs by name
        ("thoth.Notes", "flask"),
    ]
    assert compiled[3].match is units[2].match[0]  # instances share the declaration and its run


def test_a_group_becomes_one_step_per_member_with_the_others_resolved() -> None:
    (group,) = units_of(
        """\
        units:
          steps:
          - name: Pillow830
            type: step.Group
            should_include: {adviser_pipeline: true}
            match:
              group:
              - package_version: {name: pillow, version: "==8.3.0"}
              - package_version: {name: numpy}
              - package_version: {name: scipy, version: "<1.0"}
            run: {not_acceptable: these must not coexist}
        """
    )
    instances = compile_units([group])
    assert [instance.package for instance in instances] == ["pillow", "numpy", "scipy"]
    for instance in instances:
        assert instance.match is not None and instance.match.state is not None
        assert instance.match.package_version is not None
        others = {package.name for package in instance.match.state.resolved_dependencies}
        assert others == {"pillow", "numpy", "scipy"} - {instance.match.package_version.name}
        assert instance.match.group == ()
        assert instance.unit is group


def test_index_returns_only_the_units_for_the_names_asked() -> None:
    result = load([TREE])
    index = result.index
    assert len(index) == 20
    assert index.packages == {
        "acme-core",
        "enum34",
        "flask",
        "gitpython",
        "h5py",
        "numpy",
        "pillow",
        "scipy",
        "tensorflow",
        "tensorflow-cpu",
    }
    unkeyed = {instance.unit.name for instance in index.unkeyed}
    assert unkeyed == {
        "thoth.PrescriptionAuthenticatedBoot",
        "thoth.GPUNoCUDABoot",
        "thoth.PyPIIndexSieve",
        "thoth.PickleSecurityWarningWrap",
    }
    selected = index.select(
        ["NumPy", "Pillow", "requests"], unkeyed=False
    )  # any spelling; unknown names find nothing
    assert [(instance.unit.name, instance.package) for instance in selected] == [
        ("thoth.Pillow830TypeErrorStep", "pillow"),
        ("thoth.Pillow830TypeErrorStep", "numpy"),
    ]
    with_unkeyed = index.select(["h5py"])
    assert {instance.unit.name for instance in with_unkeyed} == unkeyed | {"thoth.TensorFlow21H5pyStep"}
    # Load order, whatever the order of the names.
    assert index.select(["tensorflow", "scipy"]) == index.select(["scipy", "tensorflow"])
    tensorflow = {instance.unit.name for instance in index.for_package("tensorflow")}
    assert tensorflow == {
        "thoth.TensorFlowOneDNNWrap",
        "thoth.TensorFlowSizeWrap",
        "thoth.TensorFlow24AVX2Sieve",
        "thoth.TensorFlowGPUPseudonym",
    }
    assert index.for_package("not-there") == ()


def test_a_request_with_many_names_looks_at_only_their_units() -> None:
    units = units_of(
        "units:\n  sieves:\n"
        + "".join(
            f"  - {{name: S{n}, type: sieve, should_include: {{}},"
            f" match: {{package_version: {{name: p{n}}}}}}}\n"
            for n in range(1000)
        )
    )
    index = UnitIndex(compile_units(units))
    asked = [f"p{n}" for n in range(0, 1000, 10)]
    selected = index.select(asked)
    assert len(selected) == 100
    assert {instance.package for instance in selected} == set(asked)


def test_index_equality_and_pickling() -> None:
    index = load([TREE]).index
    copy = pickle.loads(pickle.dumps(index))
    assert copy == index and list(copy) == list(index)
    assert copy.select(["numpy"]) == index.select(["numpy"])
    assert isinstance(next(iter(copy)), CompiledUnit)
    assert index != UnitIndex([])
