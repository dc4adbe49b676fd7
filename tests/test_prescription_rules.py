"""The rule database ``prescriptions/rules``: it loads cleanly, every rule cites its evidence, and the
seed examples are present with the shape the resolver tests rely on.

End-to-end behaviour through the resolver is tested with the resolver integration; these tests read
the loaded units (pure data), so a rule edited into the wrong shape fails here first.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from packaging.version import Version

from index_proxy.cli import main
from prescriptions import Prescriptions, lint, load
from prescriptions.model import (
    KINDS,
    Boot,
    Hardware,
    NoVersion,
    PackageVersion,
    Pseudonym,
    PseudonymRun,
    Sieve,
    Step,
    StepRun,
    Unit,
    VersionSpec,
    Wrap,
)

RULES = Path(__file__).resolve().parent.parent / "prescriptions" / "rules"
NAMESPACE = "index-proxy"
# The public registry's host names, assembled so that they never appear in this file as text.
_REGISTRY = "py" + "pi"
REGISTRY_HOSTS = {f"{_REGISTRY}.org", f"files.{_REGISTRY}hosted.org", f"{_REGISTRY}.python.org"}


@pytest.fixture(scope="module")
def rules() -> Prescriptions:
    return load([RULES])


@pytest.fixture(scope="module")
def units(rules: Prescriptions) -> dict[str, Unit[Any]]:
    return {unit.name: unit for unit in rules.units}


def unit_of(units: dict[str, Unit[Any]], name: str) -> Unit[Any]:
    full = f"{NAMESPACE}.{name}"
    assert full in units, f"{full} is missing from prescriptions/rules"
    return units[full]


def links(unit: Unit[Any]) -> Iterator[str]:
    for entry in unit.run.stack_info:
        yield entry.url
    for entry in getattr(unit.run, "justification", ()):
        yield entry.url
    notes = getattr(unit.run, "release_notes", None)
    if notes is not None:
        yield f"https://github.com/{notes.organization}/{notes.repository}/releases"


def admits(package: PackageVersion, name: str, version: str, index: str | None = None) -> bool:
    """Whether *package* (a match entry) matches *name* at *version* from the index named *index*."""
    if package.name is not None and package.name != name:
        return False
    if package.version is not None and not package.version.specifier.contains(version, prereleases=True):
        return False
    return package.index_url is None or package.index_url.admits(index)


def in_band(spec: VersionSpec | NoVersion | None, version: str) -> bool:
    assert isinstance(spec, VersionSpec)
    return spec.specifier.contains(version, prereleases=True)


def removes(sieve: Unit[Any], name: str, version: str, index: str | None = None) -> bool:
    return any(
        match.package_version is not None and admits(match.package_version, name, version, index)
        for match in sieve.match
    )


# --- the whole database ------------------------------------------------------------------------------


def test_database_loads_without_problems_or_lint_findings(rules: Prescriptions) -> None:
    assert rules.problems == ()
    assert lint(rules.units) == []
    assert rules.namespaces and {namespace.name for namespace in rules.namespaces} == {NAMESPACE}
    assert len(rules.units) >= 50


def test_check_command_reports_no_problems(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prescriptions", "check", str(RULES)]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert err.endswith(": no problems\n")


def test_unit_names_are_unique(rules: Prescriptions) -> None:
    counts = Counter(unit.name for unit in rules.units)
    assert [name for name, count in counts.items() if count > 1] == []
    # Unique across all lists too, so a name in a report or a test names one unit.
    assert len(counts) == len(rules.units)


def test_every_unit_registers_in_a_resolve(rules: Prescriptions) -> None:
    assert [unit.name for unit in rules.units if not unit.should_include.adviser_pipeline] == []


def test_every_unit_links_its_evidence_over_https_never_to_the_registry(rules: Prescriptions) -> None:
    for unit in rules.units:
        urls = list(links(unit))
        assert urls, f"{unit.name} ({unit.file}) has no link to its evidence"
        for url in urls:
            parts = urlsplit(url)
            assert parts.scheme == "https", f"{unit.name}: {url} is not https"
            assert parts.hostname not in REGISTRY_HOSTS, f"{unit.name}: {url} points at the public registry"
            assert parts.hostname and "." in parts.hostname, f"{unit.name}: {url} has no host"


def test_every_message_says_something(rules: Prescriptions) -> None:
    for unit in rules.units:
        for entry in [*unit.run.stack_info, *getattr(unit.run, "justification", ())]:
            assert len(entry.message) >= 40, f"{unit.name}: message too short to explain: {entry.message!r}"
        for reason in (getattr(unit.run, "not_acceptable", None),):
            assert reason is None or len(reason) >= 30, f"{unit.name}: not_acceptable too terse"


def test_every_unit_type_is_used(rules: Prescriptions) -> None:
    used = {unit.kind for unit in rules.units}
    assert used == {kind for kinds in KINDS.values() for kind in kinds}


def test_no_file_names_the_registry_host() -> None:
    for path in RULES.rglob("*.yaml"):
        text = path.read_text(encoding="utf-8").lower()
        for host in REGISTRY_HOSTS:
            assert host not in text, f"{path} names {host}"


# --- the seed examples --------------------------------------------------------------------------------


def test_a_pillow_830_numpy_group(units: dict[str, Unit[Any]]) -> None:
    unit = unit_of(units, "Pillow830NumPyGroup")
    assert unit.kind == "step.Group"
    (match,) = unit.match
    pillow, numpy = match.group
    assert (pillow.name, str(pillow.version), numpy.name, numpy.version) == (
        "pillow",
        "==8.3.0",
        "numpy",
        None,
    )
    assert isinstance(unit.run, StepRun) and unit.run.not_acceptable


def test_b_tensorflow_21_h5py_step(units: dict[str, Unit[Any]]) -> None:
    unit = unit_of(units, "TensorFlow21H5pyStep")
    assert isinstance(unit, Step) and unit.kind == "step"
    assert isinstance(unit.run, StepRun) and unit.run.not_acceptable
    by_parent = {match.state.resolved_dependencies[0].name: match for match in unit.match if match.state}
    assert "tensorflow" in by_parent
    match = by_parent["tensorflow"]
    assert match.package_version is not None
    assert admits(match.package_version, "h5py", "3.1.0") and not admits(
        match.package_version, "h5py", "2.10.0"
    )
    (parent,) = match.state.resolved_dependencies if match.state else ()
    assert admits(parent, "tensorflow", "2.1.4") and not admits(parent, "tensorflow", "2.2.0")


def test_c_tensorflow_gpu_pseudonym_when_cuda_is_present(units: dict[str, Unit[Any]]) -> None:
    unit = unit_of(units, "TensorFlowGPUPseudonym")
    assert isinstance(unit, Pseudonym) and isinstance(unit.run, PseudonymRun)
    environments = unit.should_include.runtime_environments
    assert environments is not None and str(environments.cuda_version) == ">=0.0"
    assert unit.run.yield_matched_version is True
    assert unit.run.yield_package.name == "tensorflow-gpu" and unit.run.yield_package.locked_version is None
    assert {match.package_version.name for match in unit.match if match.package_version} >= {"tensorflow"}


TF_CUDA_BANDS = ["80", "90", "100", "101", "11", "12"]


def test_d_tensorflow_cuda_sieves_are_disjoint_bands(units: dict[str, Unit[Any]]) -> None:
    sieves = [unit_of(units, f"TensorFlowCUDA{band}Sieve") for band in TF_CUDA_BANDS]
    assert all(isinstance(sieve, Sieve) and sieve.kind == "sieve" for sieve in sieves)
    for cuda in ("8.0", "9.0", "9.2", "10.0", "10.1", "10.2", "11.0", "11.2", "11.8", "12.1", "12.4"):
        registered = [
            sieve.name
            for sieve in sieves
            if in_band(sieve.should_include.runtime_environments.cuda_version, cuda)  # type: ignore[union-attr]
        ]
        assert len(registered) == 1, f"CUDA {cuda}: {registered}"


@pytest.mark.parametrize(
    ("band", "cuda", "kept", "removed"),
    [
        (
            "101",
            "10.1",
            [("tensorflow", "2.3.1"), ("tensorflow-gpu", "2.1.0"), ("tensorflow", "2.0.0")],
            [("tensorflow", "2.4.0"), ("tensorflow-gpu", "2.0.0"), ("tensorflow", "1.15.5")],
        ),
        (
            "11",
            "11.8",
            [("tensorflow", "2.14.1"), ("tensorflow-gpu", "2.11.0"), ("tensorflow", "1.14.0")],
            [
                ("tensorflow", "2.15.0"),
                ("tensorflow", "2.3.0"),
                ("tensorflow-gpu", "2.2.0"),
                ("tensorflow", "2.16.0rc0"),
            ],
        ),
        (
            "12",
            "12.2",
            [("tensorflow", "2.15.0"), ("tensorflow", "2.16.1"), ("tensorflow", "2.0.0")],
            [("tensorflow", "2.14.0"), ("tensorflow-gpu", "2.11.0"), ("tensorflow", "2.4.0")],
        ),
    ],
)
def test_d_tensorflow_cuda_sieve_removes_unsupported_versions(
    units: dict[str, Unit[Any]],
    band: str,
    cuda: str,
    kept: list[tuple[str, str]],
    removed: list[tuple[str, str]],
) -> None:
    sieve = unit_of(units, f"TensorFlowCUDA{band}Sieve")
    assert in_band(sieve.should_include.runtime_environments.cuda_version, cuda)  # type: ignore[union-attr]
    assert [pair for pair in kept if removes(sieve, *pair)] == []
    assert [pair for pair in removed if not removes(sieve, *pair)] == []


def test_d_tensorflow_cudnn_sieves(units: dict[str, Unit[Any]]) -> None:
    sieve = unit_of(units, "TensorFlowCuDNN8Sieve")
    assert in_band(sieve.should_include.runtime_environments.cudnn_version, "8.9")  # type: ignore[union-attr]
    assert removes(sieve, "tensorflow-gpu", "2.3.0") and not removes(sieve, "tensorflow-gpu", "2.4.0")
    assert removes(sieve, "tensorflow", "2.18.0") and not removes(sieve, "tensorflow", "2.17.0")
    for name in ("TensorFlowCuDNN7Sieve", "TensorFlowCuDNN9Sieve"):
        assert unit_of(units, name).kind == "sieve"


def test_e_avx2_index_preferred_on_avx2_machines(units: dict[str, Unit[Any]]) -> None:
    unit = unit_of(units, "TensorFlowAVX2Step")
    assert isinstance(unit.run, StepRun) and unit.run.score == pytest.approx(0.2)
    assert unit.kind == "step" and unit.run.not_acceptable is None
    environments = unit.should_include.runtime_environments
    assert environments is not None and environments.hardware is not None
    (hardware,) = environments.hardware
    assert isinstance(hardware, Hardware) and hardware.cpu_flags is not None
    assert hardware.cpu_flags.values == ("avx2",) and not hardware.cpu_flags.negated
    (match,) = unit.match
    assert match.package_version is not None
    assert admits(match.package_version, "tensorflow", "2.9.0", "aicoe-avx2")
    assert not admits(match.package_version, "tensorflow", "2.9.0", "public")


TORCH_BANDS = {"117": "11.7", "118": "11.8", "121": "12.1", "124": "12.4", "126": "12.6", "128": "12.8"}


def test_f_torch_from_the_cuda_index_matching_the_driver(units: dict[str, Unit[Any]]) -> None:
    sieves = {nnn: unit_of(units, f"TorchCUDA{nnn}IndexSieve") for nnn in TORCH_BANDS}
    for nnn, cuda in TORCH_BANDS.items():
        registered = [
            other
            for other, sieve in sieves.items()
            if in_band(sieve.should_include.runtime_environments.cuda_version, cuda)  # type: ignore[union-attr]
        ]
        assert registered == [nnn], f"CUDA {cuda}"
    sieve = sieves["121"]
    assert sieve.kind == "sieve"
    for project in ("torch", "torchvision", "torchaudio"):
        assert removes(sieve, project, "2.1.0", "pytorch-cu118")
        assert removes(sieve, project, "2.5.0", "pytorch-cu124")
        assert not removes(sieve, project, "2.1.0", "pytorch-cu121")
        assert not removes(sieve, project, "2.1.0", "public")
    assert not removes(sieve, "numpy", "1.26.0", "pytorch-cu118")


def test_f_torch_cuda_only_label_uses_a_negated_index(units: dict[str, Unit[Any]]) -> None:
    sieve = unit_of(units, "TorchCUDA121OnlySieve")
    assert dict(sieve.should_include.labels) == {"torch-index": "cuda-only"}
    assert removes(sieve, "torch", "2.1.0", "public") and not removes(
        sieve, "torch", "2.1.0", "pytorch-cu121"
    )
    no_cuda = unit_of(units, "TorchNoCUDASieve")
    assert isinstance(no_cuda.should_include.runtime_environments.cuda_version, NoVersion)  # type: ignore[union-attr]
    assert removes(no_cuda, "torch", "2.1.0", "pytorch-cu121") and not removes(
        no_cuda, "torch", "2.1.0", "public"
    )


def test_g_gpu_without_cuda_boot_warns(units: dict[str, Unit[Any]]) -> None:
    unit = unit_of(units, "GPUWithoutCUDABoot")
    assert isinstance(unit, Boot) and unit.match == ()
    environments = unit.should_include.runtime_environments
    assert environments is not None and isinstance(environments.cuda_version, NoVersion)
    (hardware,) = environments.hardware or ()
    assert hardware.gpu_models is not None and hardware.gpu_models.negated
    assert hardware.gpu_models.values == (None,)
    assert [entry.type for entry in unit.run.stack_info] == ["WARNING"]
    assert unit.run.not_acceptable is None


def test_h_gitpython_needs_git(units: dict[str, Unit[Any]]) -> None:
    boot = unit_of(units, "GitPythonGitBoot")
    assert isinstance(boot, Boot) and [match.package_name for match in boot.match] == ["gitpython"]
    assert [entry.type for entry in boot.run.stack_info] == ["INFO"]
    wrap = unit_of(units, "GitPythonGitWrap")
    assert isinstance(wrap, Wrap) and wrap.kind == "wrap"
    (match,) = wrap.match
    assert match.state is not None and [package.name for package in match.state.resolved_dependencies] == [
        "gitpython"
    ]
    assert [entry.type for entry in wrap.run.justification] == ["INFO"]


def test_i_tempfile_mktemp_usage_warning(units: dict[str, Unit[Any]]) -> None:
    unit = unit_of(units, "TempfileMktempWrap")
    assert isinstance(unit, Wrap) and unit.kind == "wrap"
    assert dict(unit.should_include.library_usage) == {"tempfile": ("tempfile.mktemp",)}
    assert [entry.type for entry in unit.run.stack_info] == ["WARNING"]


def test_j_tensorflow_21_urllib3(units: dict[str, Unit[Any]]) -> None:
    unit = unit_of(units, "TensorFlow21Urllib3Step")
    assert unit.kind == "step" and isinstance(unit.run, StepRun) and unit.run.not_acceptable
    match = next(
        match
        for match in unit.match
        if match.state and match.state.resolved_dependencies[0].name == "tensorflow"
    )
    assert match.package_version is not None
    assert admits(match.package_version, "urllib3", "1.5") and not admits(
        match.package_version, "urllib3", "1.26.0"
    )
    assert any("thoth-station" in url for url in links(unit))


# --- advisories and the other unit types --------------------------------------------------------------


def test_security_advisories_remove_under_security_and_penalise_otherwise(
    units: dict[str, Unit[Any]],
) -> None:
    sieve = unit_of(units, "Urllib3CookieRedirectSieve")
    assert sieve.should_include.recommendation_types is not None
    assert sieve.should_include.recommendation_types.values == ("security",)
    assert removes(sieve, "urllib3", "1.26.16") and removes(sieve, "urllib3", "2.0.5")
    assert not removes(sieve, "urllib3", "1.26.17") and not removes(sieve, "urllib3", "2.0.6")
    step = unit_of(units, "Urllib3CookieRedirectStep")
    assert isinstance(step.run, StepRun) and step.run.score is not None and step.run.score < 0
    assert "security" not in (step.should_include.recommendation_types or ()).values  # type: ignore[union-attr]
    assert {entry.cve_id for entry in step.run.justification} == {"CVE-2023-43804"}
    assert all(entry.advisory and entry.version_range for entry in step.run.justification)


def test_skip_add_and_stride_units(units: dict[str, Unit[Any]]) -> None:
    skip = unit_of(units, "TensorFlowRemoveSciPyStep")
    assert skip.kind == "step.SkipPackage"
    (match,) = skip.match
    assert match.state is not None and match.state.package_version_from[0].name == "tensorflow"
    add = unit_of(units, "ShodanAddSetuptoolsStep")
    assert add.kind == "step.AddPackage" and isinstance(add.run, StepRun) and add.run.add_package is not None
    assert add.run.add_package.name == "setuptools" and add.run.add_package.index_url == "public"
    assert Version(add.run.add_package.locked_version.removeprefix("==")) < Version("82")  # type: ignore[union-attr]
    stride = unit_of(units, "PandasSQLAlchemy2Stride")
    (match,) = stride.match
    assert match.state is not None
    assert [package.name for package in match.state.resolved_dependencies] == ["pandas", "sqlalchemy"]
    assert unit_of(units, "TypingBackportSkipSieve").kind == "sieve.SkipPackage"
    notes = unit_of(units, "RequestsReleaseNotesWrap")
    assert notes.kind == "wrap.GHReleaseNotes" and notes.run.release_notes.tag_version_prefix == "v"  # type: ignore[attr-defined]
