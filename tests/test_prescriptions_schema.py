"""Tests for the prescription schema: Thoth's shapes load into typed units, every error class is reported."""

from __future__ import annotations

import pickle
import textwrap
from typing import Any

import pytest
from packaging.specifiers import SpecifierSet

from prescriptions import parse
from prescriptions.model import (
    Boot,
    Hardware,
    IndexUrl,
    LockedPackage,
    Namespace,
    NoVersion,
    OneOf,
    OperatingSystem,
    PackageVersion,
    Pseudonym,
    PythonPackage,
    RpmPackage,
    Sieve,
    Step,
    Stride,
    Unit,
    VersionSpec,
    Wrap,
)

FILE = "rules/tf/step.yaml"


def load_units(text: str, namespace: Namespace | None = None) -> list[Unit[Any]]:
    units, problems = parse(textwrap.dedent(text), FILE, namespace)
    assert problems == []
    return units


def problems(text: str) -> list[str]:
    _, found = parse(textwrap.dedent(text), FILE)
    return [str(problem) for problem in found]


def step(
    should_include: str = "adviser_pipeline: true",
    match: str = "package_version: {name: numpy}",
    run: str = "score: 0.1",
) -> str:
    """A one-step document with the given flow-style parts (each on its own line: 6, 7, 8)."""
    return f"""\
units:
  steps:
  - name: S
    type: step
    should_include:
      {should_include}
    match:
      {match}
    run:
      {run}
"""


# --- Thoth's shapes load, with their meaning ---------------------------------------------------------


def test_sieve_with_hardware_gate_and_match_list() -> None:
    (sieve,) = load_units(
        """\
        units:
          sieves:
          - name: TensorFlow24AVX2Sieve
            type: sieve
            should_include:
              adviser_pipeline: true
              runtime_environments: {hardware: [{cpu_flags: {not: [avx2]}}]}
            match:
            - package_version: {name: tensorflow, version: "==2.4.0", index_url: "https://index.example/simple"}
            - package_version: {name: tensorflow-cpu, version: "==2.4.0"}
            run: {stack_info: [{type: WARNING, message: needs AVX2, link: "https://example.org/i/1"}]}
        """,
        Namespace("thoth", "2023.1"),
    )
    assert isinstance(sieve, Sieve)
    assert (sieve.name, sieve.kind, sieve.bucket, sieve.key, sieve.line) == (
        "thoth.TensorFlow24AVX2Sieve",
        "sieve",
        "sieves",
        "units.sieves[0]",
        3,
    )
    assert sieve.namespace == Namespace("thoth", "2023.1")
    hardware = sieve.should_include.runtime_environments.hardware  # type: ignore[union-attr]
    assert hardware == (Hardware(cpu_flags=OneOf(("avx2",), negated=True, line=7), line=7),)
    first, second = sieve.match
    assert (first.key, second.key) == ("match[0]", "match[1]")
    assert first.package_version == PackageVersion(
        "tensorflow",
        VersionSpec("==2.4.0", SpecifierSet("==2.4.0"), 9),
        IndexUrl("https://index.example/simple"),
        None,
        9,
    )
    assert sieve.run.stack_info[0].url == "https://example.org/i/1"


def test_step_with_state_veto() -> None:
    (unit,) = load_units(
        """\
        units:
          steps:
          - name: TensorFlow21H5pyStep
            type: step
            should_include: {adviser_pipeline: true, recommendation_types: [performance, security, stable]}
            match:
            - package_version: {name: h5py, version: ">=3", index_url: {not: "https://index.example/simple"}}
              state: {resolved_dependencies: [{name: tensorflow, version: "~=2.1.0"}]}
            run:
              multi_package_resolution: false
              not_acceptable: TensorFlow 2.1 is over-pinned against h5py>=3
              stack_info: [{type: WARNING, message: over-pinned, link: tf_21_h5py}]
        """
    )
    assert isinstance(unit, Step)
    assert unit.name == "UNKNOWN.TensorFlow21H5pyStep"  # Thoth's name without a metadata file
    assert unit.should_include.recommendation_types == OneOf(("performance", "security", "stable"), line=5)
    (match,) = unit.match
    assert match.package_version is not None and match.package_version.index_url == IndexUrl(
        "https://index.example/simple", negated=True
    )
    assert match.state is not None and match.state.resolved_dependencies[0].name == "tensorflow"
    assert unit.run.not_acceptable == "TensorFlow 2.1 is over-pinned against h5py>=3"
    assert unit.run.multi_package_resolution is False
    assert unit.run.stack_info[0].url == "https://thoth-station.ninja/j/tf_21_h5py"


def test_all_step_kinds_pseudonym_stride_and_wraps() -> None:
    units = load_units(
        """\
        units:
          steps:
          - name: Skip
            type: step.SkipPackage
            should_include: {adviser_pipeline: true}
            match:
              package_version: {name: scipy}
              state: {package_version_from: [{name: tensorflow, version: ">2.1,<=2.3"}]}
          - name: Add
            type: step.AddPackage
            should_include: {adviser_pipeline: true}
            match: {package_version: {name: gitpython}}
            run:
              package_version:
                {name: typing-extensions, locked_version: "==4.5.0", index_url: "https://index.example/simple",
                 develop: false}
          - name: Group
            type: step.Group
            should_include: {adviser_pipeline: true}
            match:
              group: [{package_version: {name: pillow, version: "==8.3.0"}}, {package_version: {name: numpy}}]
            run: {not_acceptable: Pillow 8.3.0 breaks with NumPy}
          pseudonyms:
          - name: Gpu
            type: pseudonym
            should_include: {adviser_pipeline: true, runtime_environments: {cuda_version: ">=0.0"}}
            match: {package_version: {name: tensorflow}}
            run:
              yield:
                yield_matched_version: true
                package_version: {name: tensorflow-gpu, locked_version: null}
          strides:
          - name: Stride
            type: stride
            should_include: {adviser_pipeline: true}
            match: {state: {resolved_dependencies: [{name: flask, version: "<2.2"}, {version: ">=3"}]}}
            run: {not_acceptable: Werkzeug 3 breaks old Flask}
          wraps:
          - name: Notes
            type: wrap.GHReleaseNotes
            should_include: {adviser_pipeline: true}
            match: {state: {resolved_dependencies: {name: flask}}}
            run: {release_notes: {organization: pallets, repository: flask}}
          - name: Manifest
            type: wrap
            should_include: {adviser_pipeline: true, library_usage: {pickle: ["pickle.*", pickle.loads]}}
            run:
              advised_manifest_changes:
              - {apiVersion: v1, kind: DeploymentConfig, patch: {op: add, path: /a, value: 1}}
              justification:
              - {type: INFO, message: m, link: "https://e.org", package_name: flask, cve_id: CVE-1,
                 version_range: "<2"}
        """
    )
    skip, add, group, gpu, stride, notes, manifest = units
    assert [unit.kind for unit in units] == [
        "step.SkipPackage",
        "step.AddPackage",
        "step.Group",
        "pseudonym",
        "stride",
        "wrap.GHReleaseNotes",
        "wrap",
    ]
    assert (
        skip.match[0].state is not None and skip.match[0].state.package_version_from[0].name == "tensorflow"
    )
    assert add.run.add_package == LockedPackage(
        "typing-extensions", "==4.5.0", "https://index.example/simple", False, 15
    )
    assert [member.name for member in group.match[0].group] == ["pillow", "numpy"]
    assert isinstance(gpu, Pseudonym)
    assert gpu.run.yield_matched_version is True
    assert gpu.run.yield_package == LockedPackage("tensorflow-gpu", None, None, None, 31)
    assert isinstance(stride, Stride)
    assert stride.match[0].state is not None
    assert [p.name for p in stride.match[0].state.resolved_dependencies] == ["flask", None]
    assert isinstance(notes, Wrap) and notes.run.release_notes is not None
    assert notes.run.release_notes.organization == "pallets"
    assert notes.match[0].state is not None and notes.match[0].state.resolved_dependencies[0].name == "flask"
    assert manifest.match == ()
    assert manifest.should_include.library_usage == (("pickle", ("pickle.*", "pickle.loads")),)
    assert manifest.run.advised_manifest_changes == [
        {"apiVersion": "v1", "kind": "DeploymentConfig", "patch": {"op": "add", "path": "/a", "value": 1}}
    ]
    (justification,) = manifest.run.justification
    assert (justification.package_name, justification.cve_id, str(justification.version_range)) == (
        "flask",
        "CVE-1",
        "<2",
    )


def test_should_include_is_parsed_into_typed_objects() -> None:
    (boot,) = load_units(
        """\
        units:
          boots:
          - name: B
            type: boot
            should_include:
              times: 1
              adviser_pipeline: true
              dependency_monkey_pipeline: false
              recommendation_types: {not: [latest]}
              decision_types: [random]
              authenticated: false
              labels: {team: thoth, requester: ci}
              library_usage: {flask: [flask.Flask]}
              dependencies: {boots: [thoth.Other], wraps: [thoth.W]}
              runtime_environments:
                operating_systems: [{name: rhel, version: 8}, {name: fedora}]
                hardware:
                - {cpu_families: [6, null], cpu_models: {not: [85]}, cpu_flags: [avx512], gpu_models: [null]}
                python_version: ">=3.8"
                cuda_version: null
                cudnn_version: ">=8"
                mkl_version: "==2021.1"
                openblas_version: ">=0.3"
                openmpi_version: ">=4"
                platforms: {not: [linux-aarch64]}
                base_images: ["quay.io/thoth-station/s2i-thoth-ubi8-py38:v1.*", null]
                abi: [GLIBC_2.4]
                rpm_packages: {not: [{package_name: git, arch: x86_64, src: false}]}
                python_packages: [{name: pip, version: "<21", location: "/usr/lib/.*"}]
            match: [{package_name: flask}, {}]
            run: {stack_info: [], log: {type: INFO, message: hello}}
        """
    )
    assert isinstance(boot, Boot)
    gate = boot.should_include
    assert (gate.times, gate.adviser_pipeline, gate.dependency_monkey_pipeline, gate.authenticated) == (
        1,
        True,
        False,
        False,
    )
    assert gate.recommendation_types == OneOf(("latest",), negated=True, line=9)
    assert gate.decision_types == OneOf(("random",), line=10)
    assert gate.labels == (("team", "thoth"), ("requester", "ci"))
    assert gate.dependencies is not None
    assert gate.dependencies.items() == (("boots", ("thoth.Other",)), ("wraps", ("thoth.W",)))
    env = gate.runtime_environments
    assert env is not None
    assert env.operating_systems == (OperatingSystem("rhel", "8"), OperatingSystem("fedora", None))
    assert env.hardware == (
        Hardware(
            cpu_families=OneOf((6, None), line=18),
            cpu_models=OneOf((85,), negated=True, line=18),
            cpu_flags=OneOf(("avx512",), line=18),
            gpu_models=OneOf((None,), line=18),
            line=18,
        ),
    )
    assert isinstance(env.python_version, VersionSpec) and env.python_version.specifier == SpecifierSet(
        ">=3.8"
    )
    assert env.cuda_version == NoVersion(20)
    assert env.platforms == OneOf(("linux-aarch64",), negated=True, line=25)
    assert env.base_images is not None and env.base_images.values[1] is None
    assert env.abi == OneOf(("GLIBC_2.4",), line=27)
    assert env.rpm_packages == OneOf((RpmPackage("git", arch="x86_64", src=False),), negated=True, line=28)
    assert env.python_packages is not None
    assert env.python_packages.values[0] == PythonPackage(
        "pip", VersionSpec("<21", SpecifierSet("<21"), 29), "/usr/lib/.*"
    )
    assert [match.package_name for match in boot.match] == ["flask", None]
    assert boot.run.log is not None and boot.run.log.message == "hello"


def test_defaults_follow_thoth() -> None:
    (unit,) = load_units(step(should_include="{}"))
    gate = unit.should_include
    assert (
        gate.times,
        gate.adviser_pipeline,
        gate.authenticated,
        gate.labels,
        gate.runtime_environments,
    ) == (
        1,
        False,
        None,
        (),
        None,
    )


def test_metadata_merge_keys_times_as_boolean_and_integer_score_load() -> None:
    units = load_units(
        """\
        metadata: {generated-by: prescriptions-refresh-job}
        units:
          steps:
          - &base
            name: A
            type: step
            metadata: [anything, {at: all}]
            should_include: {adviser_pipeline: true, times: true}
            match: {package_version: {name: numpy}}
            run: {score: 1, justification: [{type: INFO, message: m, link: l, metadata: [{v: 1}]}]}
          - <<: *base
            name: B
        """
    )
    assert [unit.name for unit in units] == ["UNKNOWN.A", "UNKNOWN.B"]
    assert units[0].should_include.times == 1
    assert units[0].run.score == 1.0


def test_units_pickle() -> None:
    units = load_units(step(match='package_version: {name: numpy, version: ">=1.20"}'))
    assert pickle.loads(pickle.dumps(units)) == units


# --- every error class, with its message -------------------------------------------------------------


def test_yaml_syntax_error() -> None:
    _, (problem,) = parse("units:\n  steps: [\n", FILE)
    assert (problem.code, problem.line, problem.key) == ("yaml", 3, "")
    # libyaml (used when PyYAML has it) and the pure-Python parser word the problem differently.
    assert str(problem) in (
        f"{FILE}:3: invalid YAML: did not find expected node content (while parsing a flow node at line 3);"
        " check the indentation and quoting here",
        f"{FILE}:3: invalid YAML: expected the node content, but found '<stream end>'"
        " (while parsing a flow node at line 3); check the indentation and quoting here",
    )


def test_document_shape_errors() -> None:
    assert problems("") == [f"{FILE}: the file is empty; a prescription file is a mapping with units:"]
    assert problems("- units\n") == [f"{FILE}:1: expected a mapping with units:, got a list"]
    assert problems("unit: {}\n") == [
        f'{FILE}:1: unit: unknown key; did you mean "units"? (valid keys: units, metadata)',
        f"{FILE}:1: units: missing required key",
    ]
    assert problems("units: {groups: []}\n") == [
        f"{FILE}:1: units.groups: unknown key (valid keys: boots, pseudonyms, sieves, steps, strides, wraps)"
    ]
    assert problems("units: {steps: {name: S}}\n") == [
        f"{FILE}:1: units.steps: expected a list of units, got a mapping"
    ]


def test_unknown_and_missing_keys() -> None:
    assert problems(step(should_include="{adviser_pipline: true}")) == [
        f"{FILE}:6: units.steps[0].should_include.adviser_pipline: unknown key; did you mean"
        ' "adviser_pipeline"?'
        " (valid keys: times, adviser_pipeline, dependency_monkey_pipeline, recommendation_types,"
        " decision_types,"
        " authenticated, labels, library_usage, dependencies, runtime_environments)"
    ]
    assert problems("units: {steps: [{type: step, match: {package_version: {}}, run: {}}]}") == [
        f"{FILE}:1: units.steps[0].name: missing required key",
        f"{FILE}:1: units.steps[0].should_include: missing required key",
    ]
    assert problems(step(match="state: {}")) == [
        f"{FILE}:8: units.steps[0].match.package_version: missing required key"
    ]


def test_missing_match_or_run_for_the_unit_type() -> None:
    text = (
        "units: {steps: [{name: S, type: step, should_include: {}}],"
        " sieves: [{name: V, type: sieve, should_include: {}}]}"
    )
    assert problems(text) == [
        f"{FILE}:1: units.steps[0].match: missing required key (a step needs match)",
        f"{FILE}:1: units.steps[0].run: missing required key (a step needs run)",
        f"{FILE}:1: units.sieves[0].match: missing required key (a sieve needs match)",
    ]


def test_unit_types() -> None:
    text = """\
        units:
          steps:
          - {name: A, type: stepp, should_include: {}}
          - {name: B, type: sieve, should_include: {}}
          - {name: C, type: 12, should_include: {}}
        """
    assert problems(text) == [
        f'{FILE}:3: units.steps[0].type: unknown unit type "stepp"; did you mean "step"?'
        " (units.steps takes step, step.SkipPackage, step.AddPackage, step.Group)",
        f"{FILE}:4: units.steps[1].type: a sieve goes under units.sieves, not units.steps"
        " (units.steps takes step, step.SkipPackage, step.AddPackage, step.Group)",
        f'{FILE}:5: units.steps[2].type: expected a string, got 12; quote it: "12"',
    ]


def test_wrong_value_types() -> None:
    assert problems(step(should_include="{adviser_pipeline: yes please}")) == [
        f'{FILE}:6: units.steps[0].should_include.adviser_pipeline: expected true or false, got "yes please"'
    ]
    assert problems(step(should_include="{times: 2}")) == [
        f"{FILE}:6: units.steps[0].should_include.times: expected 0 (unit off) or 1, got 2"
    ]
    assert problems(step(run="score: high")) == [
        f'{FILE}:10: units.steps[0].run.score: expected a number, got "high"; e.g. 0.2 or -0.5'
    ]
    assert problems(step(should_include="{labels: {pypi-index: off}}")) == [
        f"{FILE}:6: units.steps[0].should_include.labels.pypi-index: expected a string, got off; quote it:"
        ' "off"'
    ]
    assert problems(step(run='not_acceptable: ""')) == [
        f"{FILE}:10: units.steps[0].run.not_acceptable: must not be empty"
    ]
    assert problems(step(should_include="{library_usage: {}}")) == [
        f"{FILE}:6: units.steps[0].should_include.library_usage: expected a mapping of libraries to the"
        " symbols used,"
        " e.g. {flask: [flask.Flask]}, got an empty mapping"
    ]


def test_lists_and_not_forms() -> None:
    runtime = (
        "{runtime_environments: {hardware: [{gpu_models: [], cpu_families: {nott: [6]}}], platforms: linux}}"
    )
    assert problems(step(should_include=runtime)) == [
        f"{FILE}:6: units.steps[0].should_include.runtime_environments.hardware[0].gpu_models:"
        " expected a list or {not: [...]} with at least one item, got an empty list",
        f"{FILE}:6: units.steps[0].should_include.runtime_environments.hardware[0].cpu_families.not: missing"
        " required key",
        f"{FILE}:6: units.steps[0].should_include.runtime_environments.hardware[0].cpu_families.nott:"
        " unknown key;"
        ' did you mean "not"? (valid keys: not)',
        f"{FILE}:6: units.steps[0].should_include.runtime_environments.platforms: expected a list or"
        f" {{not: [...]}},"
        ' got "linux"',
    ]
    assert problems(step(should_include="{runtime_environments: {hardware: [{cpu_models: [x86]}]}}")) == [
        f"{FILE}:6: units.steps[0].should_include.runtime_environments.hardware[0].cpu_models[0]:"
        ' expected a whole number or null, got "x86"'
    ]


def test_value_lists_of_thoth() -> None:
    assert problems(step(should_include="{recommendation_types: [fast]}")) == [
        f"{FILE}:6: units.steps[0].should_include.recommendation_types[0]: unknown recommendation type"
        ' "fast";'
        ' did you mean "latest"? (one of latest, stable, testing, performance, security)'
    ]
    assert problems(step(should_include="{runtime_environments: {hardware: [{cpu_flags: [avx]}]}}")) == [
        f"{FILE}:6: units.steps[0].should_include.runtime_environments.hardware[0].cpu_flags[0]: unknown CPU"
        ' flag "avx";'
        ' did you mean "avx2"? (one of avx2, avx512)'
    ]
    assert problems(step(run="stack_info: [{type: NOTE, message: m, link: l}]")) == [
        f'{FILE}:10: units.steps[0].run.stack_info[0].type: unknown type "NOTE" (one of WARNING, INFO, ERROR)'
    ]


def test_specifiers_are_parsed_with_packaging() -> None:
    assert problems(step(match='package_version: {name: numpy, version: "=>1.0"}')) == [
        f'{FILE}:8: units.steps[0].match.package_version.version: "=>1.0" is not a PEP 440 version specifier;'
        ' e.g. ">=2.1,<2.4" or "==2.0.*"'
    ]
    assert problems(step(should_include="{runtime_environments: {cuda_version: 11.2}}")) == [
        f"{FILE}:6: units.steps[0].should_include.runtime_environments.cuda_version:"
        ' expected a version specifier in quotes, got 11.2; write "==11.2"'
    ]


def test_package_names_must_be_normalized_where_thoth_checks_them() -> None:
    assert [
        (p.code, str(p))
        for p in parse(textwrap.dedent(step(match="package_version: {name: Flask_Login}")), FILE)[1]
    ] == [
        (
            "non-normalized-name",
            f'{FILE}:8: units.steps[0].match.package_version.name: "Flask_Login" is not a normalized package'
            " name;"
            ' write "flask-login"',
        )
    ]


def test_links_and_locked_versions() -> None:
    assert problems(step(run="stack_info: [{type: INFO, message: m, link: See the docs}]")) == [
        f'{FILE}:10: units.steps[0].run.stack_info[0].link: "See the docs" is neither an http(s) URL nor a'
        ' justification id (lowercase letters, digits, "_" and "-", e.g. "tf_21_h5py")'
    ]
    pseudonym = """\
        units:
          pseudonyms:
          - name: P
            type: pseudonym
            should_include: {}
            match: {package_version: {name: tensorflow}}
            run: {yield: {package_version: {name: tensorflow-gpu, locked_version: "2.4.0"}}}
        """
    assert problems(pseudonym) == [
        f'{FILE}:7: units.pseudonyms[0].run.yield.package_version.locked_version: "2.4.0" is not a locked'
        " version;"
        ' write "==2.4.0"'
    ]


def test_match_shapes_per_type() -> None:
    text = """\
        units:
          steps:
          - name: Skip
            type: step.SkipPackage
            should_include: {}
            match: [{package_version: {name: scipy}}]
          - name: Group
            type: step.Group
            should_include: {}
            match: {group: [{package_version: {name: pillow}}]}
            run: {}
          pseudonyms:
          - name: P
            type: pseudonym
            should_include: {}
            match: {package_version: {version: "==1"}}
            run: {yield: {package_version: {name: tf}}}
          wraps:
          - name: W
            type: wrap.GHReleaseNotes
            should_include: {}
            match: {state: {resolved_dependencies: [{name: a}, {name: b}]}}
            run: {release_notes: {organization: x}}
        """
    assert problems(text) == [
        f"{FILE}:6: units.steps[0].match: expected a single mapping here, not a list (this unit type takes"
        " one match)",
        f"{FILE}:10: units.steps[1].match.group: a group needs at least two packages that must not coexist",
        f"{FILE}:16: units.pseudonyms[0].match.package_version.name: missing required key",
        f"{FILE}:22: units.wraps[0].match.state.resolved_dependencies: expected exactly one package, got 2",
        f"{FILE}:23: units.wraps[0].run.release_notes.repository: missing required key",
    ]


def test_duplicate_keys_are_reported_but_the_last_counts_as_in_thoth() -> None:
    units, found = parse(textwrap.dedent(step(run="{score: 0.1, score: 0.5}")), FILE)
    assert [(p.code, str(p)) for p in found] == [
        (
            "duplicate-key",
            f"{FILE}:10: units.steps[0].run.score: key given twice (first at line 10); the last one counts,"
            " remove the other",
        )
    ]
    assert units[0].run.score == 0.5


def test_keys_merges_and_library_names() -> None:
    assert problems("units: {? [a]: 1}\n") == [f"{FILE}:1: units: keys must be plain names, got a list"]
    assert problems("units:\n  <<: [1]\n") == [
        f"{FILE}:2: units: cannot merge keys here: expected a mapping for merging, but found scalar"
    ]
    assert problems(step(should_include='{library_usage: {"": [x]}}')) == [
        f"{FILE}:6: units.steps[0].should_include.library_usage: library names must not be empty"
    ]


def test_every_problem_is_collected_and_bad_units_are_left_out() -> None:
    text = """\
        units:
          steps:
          - name: Good
            type: step
            should_include: {adviser_pipeline: true}
            match: {package_version: {name: numpy}}
            run: {score: 0.1}
          - name: Bad
            type: step
            should_include: {adviser_pipeline: maybe}
            match: {package_version: {name: NumPy, version: "~>1"}}
            run: {score: x}
        """
    units, found = parse(textwrap.dedent(text), FILE)
    assert [unit.name for unit in units] == ["UNKNOWN.Good"]
    assert [(problem.line, problem.key) for problem in found] == [
        (10, "units.steps[1].should_include.adviser_pipeline"),
        (11, "units.steps[1].match.package_version.name"),
        (11, "units.steps[1].match.package_version.version"),
        (12, "units.steps[1].run.score"),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "units: {steps: [{name: '', type: step, should_include: {}, match: {package_version: {}}, run:"
            " {}}]}",
            "units.steps[0].name: must not be empty",
        ),
        (
            "units: {steps: [{name: [a], type: step, should_include: {}, match: {package_version: {}}, run:"
            " {}}]}",
            "units.steps[0].name: expected a string, got a list",
        ),
        (
            "units: {steps: [{name: a, type: step, should_include: [], match: {package_version: {}}, run:"
            " {}}]}",
            "units.steps[0].should_include: expected a mapping with times, adviser_pipeline",
        ),
    ],
)
def test_unit_field_errors(text: str, message: str) -> None:
    (found,) = problems(text)
    assert found.startswith(f"{FILE}:1: {message}")
