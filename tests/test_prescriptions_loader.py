"""Tests for the prescription loader: trees, metadata namespaces, merging, problems, scale and the cache."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from prescriptions import CompileCache, PrescriptionError, Prescriptions, lint, load

CASES = Path(__file__).parent / "prescription_cases"
TREE = CASES / "tree"
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the example tree, loaded by a relative path as a user would name it."""
    shutil.copytree(TREE, tmp_path / "rules")
    monkeypatch.chdir(tmp_path)
    return Path("rules")


def test_tree_with_metadata_files(tree: Path) -> None:
    result = load([tree])
    assert result.problems == ()
    assert lint(result.units) == []
    names = {unit.name for unit in result.units}
    assert len(result.units) == 17
    assert {
        "thoth.TensorFlow21H5pyStep",
        "thoth.Pillow830TypeErrorStep",
        "acme.PreferInternalIndexStep",
    } <= names
    # The vendor/ metadata file takes over for its subtree.
    assert [(ns.name, ns.release) for ns in result.namespaces] == [("thoth", "2023.1"), ("acme", "7")]
    by_name = {unit.name: unit for unit in result.units}
    assert by_name["acme.PreferInternalIndexStep"].namespace.release == "7"
    assert by_name["thoth.GitPythonNeedsGitBoot"].file == os.path.join("rules", "gi_", "gitpython", "git.yml")
    # Dot-directories, READMEs and the metadata files themselves are not prescriptions.
    assert result.files == tuple(
        os.path.join("rules", *part.split("/"))
        for part in (
            "_generic/authenticated.yaml",
            "_generic/gpu_no_cuda.yaml",
            "_indexes/pypi.yaml",
            "_security/pickle.yaml",
            "fl_/flask/gh_release_notes.yaml",
            "gi_/gitpython/git.yml",
            "pi_/pillow/pillow830_typeerror.yaml",
            "te_/tensorflow/tf_21_h5py.yaml",
            "te_/tensorflow/tf_24_avx2.yaml",
            "te_/tensorflow/tf_gpu.yaml",
            "te_/tensorflow/tf_rm_scipy.yaml",
            "vendor/acme/internal.yaml",
        )
    )


def test_a_file_or_subtree_named_directly_takes_the_nearest_metadata_above(tree: Path) -> None:
    (unit,) = load([tree / "te_" / "tensorflow" / "tf_gpu.yaml"]).units
    assert unit.name == "thoth.TensorFlowGPUPseudonym"
    assert {unit.name for unit in load([tree / "vendor" / "acme"]).units} == {"acme.PreferInternalIndexStep"}


def test_without_metadata_names_are_thoths_default(tmp_path: Path) -> None:
    (tmp_path / "one.yaml").write_text(
        "units: {boots: [{name: B, type: boot, should_include: {adviser_pipeline: true}, run: {}}]}\n"
    )
    result = load([tmp_path])
    assert [unit.name for unit in result.units] == ["UNKNOWN.B"]
    assert [(ns.name, ns.release) for ns in result.namespaces] == [("UNKNOWN", "UNKNOWN")]


def test_roots_merge_into_one_namespace_and_duplicates_are_reported(tree: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "_prescription_metadata.yaml").write_text("prescription: {name: thoth, release: x}\n")
    (other / "dup.yaml").write_text(
        "units:\n"
        "  boots:\n"
        "  - name: GPUNoCUDABoot\n"
        "    type: boot\n"
        "    should_include: {adviser_pipeline: true}\n"
        "    run: {}\n"
        "  wraps:\n"  # the same name in another list is another unit
        "  - {name: GPUNoCUDABoot, type: wrap, should_include: {adviser_pipeline: true}, run: {}}\n"
    )
    result = load([tree, other, tree])  # a root named twice is read once
    assert len(result.files) == 13
    assert [(p.code, str(p)) for p in result.problems] == [
        (
            "duplicate-name",
            f'{other / "dup.yaml"}:3: units.boots[0].name: boot name "thoth.GPUNoCUDABoot" is taken'
            f" (first at {os.path.join('rules', '_generic', 'gpu_no_cuda.yaml')}:3);"
            " names must be unique per unit list within a prescription namespace",
        )
    ]
    assert len(result.units) == 18  # the first of the two boots, and the wrap
    with pytest.raises(PrescriptionError) as raised:
        result.check()
    assert raised.value.problems == list(result.problems)


def test_unreadable_missing_and_non_utf8_files(tmp_path: Path) -> None:
    (tmp_path / "latin1.yaml").write_bytes("units: {}\n# caf\xe9\n".encode("latin-1"))
    result = load([tmp_path, tmp_path / "missing.yaml"])
    assert [(p.code, str(p)) for p in result.problems] == [
        ("unreadable", f"{tmp_path / 'latin1.yaml'}: not UTF-8 text: invalid continuation byte"),
        ("unreadable", f"{tmp_path / 'missing.yaml'}: cannot read: no such file or directory"),
    ]


def test_metadata_file_problems(tmp_path: Path) -> None:
    (tmp_path / "_prescription_metadata.yaml").write_text("prescription: {name: 12, releese: x}\n")
    (tmp_path / "a.yaml").write_text("units: {}\n")
    metadata = tmp_path / "_prescription_metadata.yaml"
    assert [str(p) for p in load([tmp_path]).problems] == [
        f'{metadata}:1: prescription.name: expected a string, got 12; quote it: "12"',
        f'{metadata}:1: prescription.releese: unknown key; did you mean "release"? (valid keys: name,'
        " release)",
    ]


def test_problems_of_several_files_are_all_reported_in_file_order(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("units: {steps: [{name: A}]}\n")
    (tmp_path / "b.yaml").write_text("units:\n  boots: [\n")
    (tmp_path / "c.yaml").write_text("units: {wraps: 3}\n")
    result = load([tmp_path])
    assert [(Path(p.file).name, p.line, p.key) for p in result.problems] == [
        ("a.yaml", 1, "units.steps[0].type"),
        ("a.yaml", 1, "units.steps[0].should_include"),
        ("b.yaml", 3, ""),
        ("c.yaml", 1, "units.wraps"),
    ]


# --- a few thousand files in Thoth's shapes ----------------------------------------------------------

_SHAPES = {
    "gh_release_notes.yaml": """\
units:
  wraps:
  - name: {cls}GitHubReleaseNotesWrap
    type: wrap.GHReleaseNotes
    should_include:
      adviser_pipeline: true
    match:
      state:
        resolved_dependencies:
          name: {name}
    run:
      release_notes:
        organization: {name}
        repository: {name}
        tag_version_prefix: v
""",
    "pypi_maintainers.yaml": """\
units:
  wraps:
  - name: {cls}PyPIMaintainerProjectsWrap
    type: wrap
    should_include:
      adviser_pipeline: true
    match:
      state:
        resolved_dependencies:
        - name: {name}
          index_url: https://index.example/simple
    run:
      justification:
      - type: WARNING
        message: >-
          Project '{name}' is maintained by maintainers of few other projects on PyPI
        link: https://index.example/project/{name}/
        package_name: {name}
        metadata:
        - prescriptions_repository: https://github.com/thoth-station/prescriptions
""",
    "cuda.yaml": """\
units:
  sieves:
  - name: {cls}CUDASieve
    type: sieve
    should_include:
      adviser_pipeline: true
      runtime_environments:
        cuda_version: "<11.0"
        hardware:
        - gpu_models:
            not: [null]
    match:
    - package_version:
        name: {name}
        version: ">=2.{minor},<3"
        index_url: https://index.example/simple
    - package_version:
        name: {name}-gpu
        version: ">=2.{minor},<3"
    run:
      stack_info:
      - type: WARNING
        message: {name} 2.{minor} needs CUDA 11
        link: cuda_{minor}
  steps:
  - name: {cls}NumPyStep
    type: step
    should_include:
      adviser_pipeline: true
      recommendation_types: [stable, performance, security]
    match:
      package_version:
        name: numpy
        version: ">=1.{minor}"
      state:
        resolved_dependencies:
        - name: {name}
          version: ~=2.{minor}.0
    run:
      score: -0.1
      justification:
      - type: WARNING
        message: NumPy 1.{minor} misbehaves with {name}
        link: https://github.com/example/{name}/issues/{minor}
  - name: {cls}NumPyGroup
    type: step.Group
    should_include:
      adviser_pipeline: true
    match:
      group:
      - package_version: {{name: {name}, version: "==2.{minor}.0"}}
      - package_version: {{name: numpy, version: "<1.{minor}"}}
    run:
      not_acceptable: {name} 2.{minor}.0 does not work with NumPy<1.{minor}
""",
}


def generate_tree(root: Path, packages: int) -> int:
    """Thoth-shaped files for *packages* packages (every fourth with a sieve and steps); the file count."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "_prescription_metadata.yaml").write_text("prescription:\n  name: thoth\n  release: generated\n")
    files = 0
    for number in range(packages):
        name = f"pkg{number:05d}-lib"
        folder = root / f"{name[:2]}_" / name
        folder.mkdir(parents=True)
        for file_name, text in _SHAPES.items():
            if file_name == "cuda.yaml" and number % 4:
                continue
            cls = f"Pkg{number:05d}Lib"
            (folder / file_name).write_text(text.format(name=name, cls=cls, minor=number % 30))
            files += 1
    return files


PACKAGES = 1200


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    root = tmp_path_factory.mktemp("generated") / "rules"
    return root, generate_tree(root, PACKAGES)


def test_a_few_thousand_generated_files_load_and_compile(generated: tuple[Path, int]) -> None:
    root, files = generated
    result = load([root])
    assert files == 2700
    assert len(result.files) == files
    assert result.problems == ()
    with_steps = PACKAGES // 4
    # Two wraps per package; a sieve, a step and a group per fourth package.
    assert len(result.units) == 2 * PACKAGES + 3 * with_steps
    # Instances: one per wrap, two per sieve (two match entries), one per step, two per group (two members).
    assert len(result.index) == 2 * PACKAGES + 5 * with_steps
    assert lint(result.units) == []
    assert len(result.index.for_package("numpy")) == 2 * with_steps
    # Its two wraps, its sieve's first entry and its group member; the step runs on numpy.
    assert len(result.index.select(["pkg00004-lib"], unkeyed=False)) == 4


# --- the compile cache -------------------------------------------------------------------------------


def test_cache_returns_the_same_result_and_misses_after_a_change(
    generated: tuple[Path, int], tmp_path: Path
) -> None:
    source, _ = generated
    root = tmp_path / "rules"
    shutil.copytree(source, root)
    cache_dir = tmp_path / "cache"
    first = load([root], cache=CompileCache(cache_dir))
    assert not first.from_cache
    assert [path.suffix for path in cache_dir.iterdir()] == [".pickle"]

    # A new process would start with an empty memory: only the directory is shared.
    cache = CompileCache(cache_dir)
    second = load([root], cache=cache)
    assert second.from_cache and (cache.hits, cache.misses) == (1, 0)
    assert second == first
    assert second.units == first.units and list(second.index) == list(first.index)
    assert second.digest == first.digest

    changed = root / "pk_" / "pkg00008-lib" / "cuda.yaml"
    changed.write_text(changed.read_text().replace("score: -0.1", "score: -0.3"))
    third = load([root], cache=cache)
    assert not third.from_cache and third.digest != first.digest
    step = next(unit for unit in third.units if unit.name == "thoth.Pkg00008LibNumPyStep")
    assert step.run.score == -0.3
    assert load([root], cache=cache).from_cache  # the changed tree is cached in turn (in memory)

    # Renaming a file changes the digest too: file names are part of problems and keys.
    changed.rename(changed.with_name("cuda2.yaml"))
    assert not load([root], cache=cache).from_cache


def test_cache_in_memory_only_and_unreadable_entries_are_misses(tree: Path, tmp_path: Path) -> None:
    cache = CompileCache()
    first = load([tree], cache=cache)
    assert load([tree], cache=cache).from_cache
    disk = CompileCache(tmp_path / "cache", memory=0)
    disk.put(first.digest, first)
    (tmp_path / "cache" / f"{first.digest}.pickle").write_bytes(b"not a pickle")
    again = load([tree], cache=disk)
    assert not again.from_cache and again == first
    assert disk.misses == 1


def test_disk_cache_keeps_only_the_most_recent_entries(tmp_path: Path) -> None:
    cache = CompileCache(tmp_path / "cache", memory=0, keep=2)
    for number in range(5):
        cache.put(f"digest{number}", number)
        os.utime(tmp_path / "cache" / f"digest{number}.pickle", ns=(number * 10**9, number * 10**9))
    assert sorted(path.name for path in (tmp_path / "cache").iterdir()) == [
        "digest3.pickle",
        "digest4.pickle",
    ]
    assert (cache.get("digest4"), cache.get("digest0")) == (4, None)


def test_result_is_a_value() -> None:
    result = load([TREE])
    assert isinstance(result, Prescriptions)
    assert result.check() is result
    with pytest.raises(AttributeError):
        result.units = ()  # type: ignore[misc]


def test_the_package_is_pure() -> None:
    """No index_proxy, no network or database clients get imported by loading and linting."""
    code = (
        "import sys, prescriptions\n"
        "prescriptions.lint(prescriptions.load([sys.argv[1]]).units)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('index_proxy', 'httpx', 'sqlalchemy', 'starlette', 'socket', 'resolver')]\n"
        "print(bad)\n"
    )
    output = subprocess.run(
        [sys.executable, "-c", code, str(TREE)], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    assert output.strip() == "[]"
