"""Prescriptions benchmark: loading Thoth-sized rule trees, and what 60k loaded units add to a resolve.

Run from the repository root::

    .venv/bin/python benchmarks/prescriptions.py [--quick] [--calls N] [--profile] [--markdown FRAGMENT.md]

One run does all of this, on 127.0.0.1 only (pip's corpus download aside):

1. Trees: prescription trees of 1k, 10k and 60k unit files in the shapes and proportions of Thoth's
   rule database, written once into ``benchmarks/.cache/prescriptions-<size>`` (reused while the
   generator and the corpus are unchanged). As in Thoth's database, most files are auto-generated
   per-package, per-version informational wraps; the rest are release-notes wraps, state-dependent
   vetoes, scoring steps, ``step.Group`` conflicts, sieves gated on CUDA or CPU flags, pseudonyms
   (mostly gated on CUDA), package boots, strides, ``step.SkipPackage`` on who introduced a package,
   label-gated ``sieve.SkipPackage``, plus a few shared folders (``_security`` library-usage wraps,
   ``_indexes`` label sieves, ``_containers`` base-image boots), under ``<xx>_/<package>/`` folders
   and a ``_prescription_metadata.yaml``. The packages are those of the resolve benchmark's corpus
   (with their real versions, so units fire: wraps annotate, scores count, vetoes are checked but,
   aimed at versions the corpus does not have, never change the pins) and made-up ones, about 20
   files a package.
2. Loading: ``prescriptions.load(tree, cache=CompileCache(dir))`` in a new process pinned to core 0,
   cold (empty cache directory: read, parse, validate, compile, pickle) and warm (a new process on the
   cache written by the cold run: read and hash every file, unpickle), per file.
3. Resolve: the corpus and request of ``benchmarks/resolve.py`` (its functions, imported) against two
   fresh index-proxy processes on core 0 (this script on core 1), one without prescriptions and one
   with the 60k tree (``prescriptions: [tree]``, compile cache copied in so it starts warm). After
   warm-up calls, N warm calls of each case, interleaved between the two proxies: ``latest``, and
   ``stable`` with ``search.budget_seconds: 0`` (the pipeline without the improvement search; the
   proxy without rules then runs the empty pipeline). Medians of wall time at the client and of the
   proxy's CPU per call; the difference and the ratio against the goal (< 10 ms added).
4. With ``--profile``, or when the goal is missed: cProfile of warm calls in this process (index-proxy's
   services with the 60k tree, no HTTP), by function.

``--markdown`` writes the results as a fragment for ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import platform
import pstats
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import resolve as corpus
from _processes import (
    Server,
    cpu_model_and_memory,
    first_line,
    free_port,
    log,
    other_busy_processes,
    scratch_dir,
    yes,
)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CACHE = HERE / ".cache"

# This file is named like the package it measures: with this folder first on the path, index-proxy
# (imported in-process for the profile) would import this script as ``prescriptions``.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))

SIZES = (1_000, 10_000, 60_000)
RESOLVE_SIZE = 60_000
GOAL_ADDED_MS = 10.0
SERVER_CPU = 0
CLIENT_CPU = 1
GENERATOR_VERSION = "3"
INDEX_URL = "https://index.example/simple"
"""The index the rules name (Thoth's rules named the public index); the corpus is served from a folder."""
FILES_PER_PACKAGE = 20


# -- the trees -------------------------------------------------------------------------------------

# Shares of the generated files by shape (the rest are per-version wraps, and one release-notes wrap
# per package). Thoth's database was dominated by auto-generated per-version wraps; the hand-written
# rules were mostly state-dependent vetoes, sieves by CUDA/CPU, pseudonyms and a few boots/strides.
SHARES = {
    "veto": 0.03,
    "score": 0.015,
    "group": 0.01,
    "sieve": 0.02,
    "pseudonym": 0.008,
    "boot": 0.007,
    "stride": 0.007,
    "skip_from": 0.004,
    "skip_package": 0.002,
}
CORPUS_SHARE = 0.3
"""Of the hand-written shapes, the share bound to corpus packages (as Thoth's were to popular ones)."""


@dataclass
class TreeStats:
    files: int = 0
    units: dict[str, int] = field(default_factory=dict)
    packages: int = 0
    corpus_packages: int = 0


def corpus_versions(wheels: Path) -> dict[str, str]:
    """Normalized project name -> the version of its wheel in the corpus."""
    found = {}
    for wheel in sorted(wheels.glob("*.whl")):
        name, version = wheel.name.split("-")[:2]
        found[corpus.canonical(name)] = corpus.normal_version(version)
    return found


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[-_.]", name) if part)


def _made_up_names(count: int, rng: random.Random) -> list[str]:
    syllables = ("py", "data", "flow", "net", "lib", "core", "io", "ml", "web", "sql", "auth", "json", "cli")
    tails = ("kit", "tools", "utils", "lite", "x", "client", "server", "lab", "box", "fast", "plus")
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < count:
        name = f"{rng.choice(syllables)}{rng.choice(syllables)}-{rng.choice(tails)}-{len(names)}"
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names


def _block(kind_list: str, body: str) -> str:
    return f"units:\n  {kind_list}:\n{body}"


def _stack(severity: str, message: str, link: str, indent: str = "      ") -> str:
    return (
        f"{indent}stack_info:\n{indent}- type: {severity}\n{indent}  message: {json.dumps(message)}\n"
        f"{indent}  link: {link}\n"
    )


class _Writer:
    def __init__(self, tree: Path) -> None:
        self.tree = tree
        self.stats = TreeStats()
        self.serial = 0

    def write(self, relative: str, text: str, kind: str) -> None:
        path = self.tree / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        self.stats.files += 1
        self.stats.units[kind] = self.stats.units.get(kind, 0) + 1

    def unit_name(self, package: str, what: str) -> str:
        self.serial += 1
        return f"{_camel(package)}{what}{self.serial}"


def _folder(package: str) -> str:
    return f"{package[:2]}_/{package}"


def _absent(rng: random.Random) -> str:
    """A version no corpus project has: rules aimed at it are checked but never fire."""
    return f"0.0.0.{rng.randrange(1, 50)}"


def generate_tree(size: int, versions: dict[str, str], seed: int = 0) -> tuple[Path, TreeStats]:
    """A tree of *size* unit files (reused when already generated the same way)."""
    tree = CACHE / f"prescriptions-{size}"
    stamp = tree / ".complete"
    key = json.dumps({"generator": GENERATOR_VERSION, "size": size, "seed": seed, "corpus": versions})
    stats_file = tree / ".stats.json"
    if stamp.exists() and stamp.read_text() == key and stats_file.exists():
        saved = json.loads(stats_file.read_text())
        return tree, TreeStats(**saved)
    if tree.exists():
        shutil.rmtree(tree)
    tree.mkdir(parents=True)
    log(f"generating a tree of {size} unit files into {tree.relative_to(ROOT)}")
    rng = random.Random(seed)
    writer = _Writer(tree)
    writer.write(
        "_prescription_metadata.yaml", "prescription:\n  name: thoth\n  release: 2023.1\n", "metadata"
    )
    writer.stats.files -= 1  # not a unit file
    del writer.stats.units["metadata"]
    real = sorted(versions)
    packages = real + _made_up_names(max(0, size // FILES_PER_PACKAGE - len(real)), rng)
    _shared(writer, real)
    special = {shape: max(1, round(size * share)) for shape, share in SHARES.items()}
    per_version = size - writer.stats.files - len(packages) - sum(special.values())
    for package in packages:
        _release_notes(writer, package)
    shapes = [shape for shape, count in special.items() for _ in range(count)]
    rng.shuffle(shapes)
    for shape in shapes:
        bound = rng.choice(real) if rng.random() < CORPUS_SHARE else rng.choice(packages)
        other = rng.choice([name for name in real if name != bound] if bound in versions else packages)
        _SHAPES[shape](writer, rng, bound, other, versions)
    # Per-version informational wraps, spread over the packages; the corpus's real versions first.
    for count in range(max(0, per_version)):
        package = packages[count % len(packages)]
        round_ = count // len(packages)
        if package in versions and round_ == 0:
            version = versions[package]
        else:
            version = f"{round_ // 10}.{round_ % 10}.{rng.randrange(0, 20)}"
        _version_wrap(writer, package, version)
    writer.stats.packages = len(packages)
    writer.stats.corpus_packages = len(real)
    stats_file.write_text(json.dumps(writer.stats.__dict__))
    stamp.write_text(key)
    return tree, writer.stats


def _shared(writer: _Writer, real: list[str]) -> None:
    """Thoth's shared folders: a handful of units bound to no package."""
    for number, (library, symbol) in enumerate(
        (("pickle", "pickle.*"), ("tempfile", "tempfile.mktemp"), ("yaml", "yaml.load"), ("subprocess", "*"))
    ):
        pattern = f"{library}.*" if symbol == "*" else symbol
        body = (
            f"  - name: {_camel(library)}SecurityWrap{number}\n    type: wrap\n    should_include:\n"
            f'      adviser_pipeline: true\n      library_usage:\n        {library}: ["{pattern}"]\n'
            f"    run:\n{_stack('WARNING', f'{library} is used: review {symbol}', f'security_{library}')}"
        )
        writer.write(f"_security/{library}.yaml", _block("wraps", body), "wrap (library_usage)")
    for number, label in enumerate(("solely", "disabled", "enabled", "primary")):
        for other, url in enumerate((INDEX_URL, "https://aicoe.example/simple")):
            body = (
                f"  - name: IndexLabel{_camel(label)}Sieve{number}{other}\n    type: sieve\n"
                f"    should_include:\n      adviser_pipeline: true\n"
                f"      labels:\n        index-{other}: {label}\n"
                f"    match:\n      package_version:\n        index_url:\n          not: {url}\n"
                f"    run:\n{_stack('INFO', f'Index {url} is {label}', 'index_labels')}"
            )
            writer.write(f"_indexes/{label}_{other}.yaml", _block("sieves", body), "sieve (labels, unkeyed)")
    for number in range(12):
        image = f"quay.example/thoth-station/s2i-thoth-ubi8-py3{8 + number % 4}:v0.{number}.0"
        body = (
            f"  - name: BaseImageSecurityBoot{number}\n    type: boot\n    should_include:\n"
            f"      adviser_pipeline: true\n      recommendation_types: [security]\n"
            f'      runtime_environments:\n        base_images: ["{image}"]\n'
            f"    run:\n      not_acceptable: {image} has known vulnerabilities\n"
            f"{_stack('ERROR', f'{image} has known vulnerabilities', 'rhsa')}"
        )
        writer.write(
            f"_containers/image_{number}/quay_security.yaml", _block("boots", body), "boot (base image)"
        )
    for number, flag in enumerate(("avx2", "avx512")):
        package = real[number % len(real)]
        body = (
            f"  - name: AICoE{_camel(flag)}Step{number}\n    type: step\n    should_include:\n"
            f"      adviser_pipeline: true\n      runtime_environments:\n        hardware:\n"
            f"        - cpu_flags: [{flag}]\n    match:\n    - package_version:\n"
            f"        name: {package}\n        index_url: https://aicoe.example/{flag}/simple\n"
            f"    run:\n      score: 0.2\n{_stack('INFO', f'{flag} builds preferred', 'aicoe')}"
        )
        writer.write(f"_aicoe/{flag}.yaml", _block("steps", body), "step (score, hardware)")


def _release_notes(writer: _Writer, package: str) -> None:
    body = (
        f"  - name: {writer.unit_name(package, 'GitHubReleaseNotesWrap')}\n    type: wrap.GHReleaseNotes\n"
        f"    should_include:\n      adviser_pipeline: true\n    match:\n      state:\n"
        f"        resolved_dependencies:\n          name: {package}\n"
        f"    run:\n      release_notes:\n        organization: {package}-org\n"
        f"        repository: {package}\n"
    )
    writer.write(f"{_folder(package)}/gh_release_notes.yaml", _block("wraps", body), "wrap.GHReleaseNotes")


def _version_wrap(writer: _Writer, package: str, version: str) -> None:
    size = (len(package) * 7919 + sum(map(ord, version))) % 900 + 1
    body = (
        f"  - name: {writer.unit_name(package, 'ArtifactSizeWrap')}\n    type: wrap\n"
        f"    should_include:\n      adviser_pipeline: true\n    match:\n      state:\n"
        f"        resolved_dependencies:\n        - name: {package}\n          version: =={version}\n"
        f"    run:\n      justification:\n      - type: INFO\n"
        f"        message: {package} {version} wheels are about {size} MB\n"
        f"        link: {INDEX_URL}/{package}/\n        package_name: {package}\n"
    )
    writer.write(
        f"{_folder(package)}/pypi_artifact_size_{version.replace('.', '_')}.yaml",
        _block("wraps", body),
        "wrap (per version)",
    )


def _veto(writer: _Writer, rng: random.Random, package: str, other: str, versions: dict[str, str]) -> None:
    name = writer.unit_name(package, "Step")
    body = (
        f"  - name: {name}\n    type: step\n    should_include:\n      adviser_pipeline: true\n"
        f"      recommendation_types: [latest, performance, security, stable]\n    match:\n"
        f'    - package_version: {{name: {package}, version: "=={_absent(rng)}"}}\n      state:\n'
        f'        resolved_dependencies:\n        - name: {other}\n          version: ">=0"\n'
        f"    run:\n      multi_package_resolution: false\n"
        f"      not_acceptable: {package} breaks with {other}\n"
        f"{_stack('WARNING', f'{package} does not work with {other}', 'incompatible')}"
    )
    writer.write(f"{_folder(package)}/{name.lower()}.yaml", _block("steps", body), "step (veto, state)")


def _score(writer: _Writer, rng: random.Random, package: str, other: str, versions: dict[str, str]) -> None:
    name = writer.unit_name(package, "ScoreStep")
    score = rng.choice((-0.1, -0.05, 0.05, 0.1))
    state = (
        f"      state:\n        resolved_dependencies:\n        - name: {other}\n"
        if rng.random() < 0.5
        else ""
    )
    body = (
        f"  - name: {name}\n    type: step\n    should_include:\n      adviser_pipeline: true\n"
        f"      recommendation_types: [latest, performance, stable]\n    match:\n"
        f'    - package_version: {{name: {package}, version: "<=99"}}\n{state}'
        f"    run:\n      score: {score}\n      justification:\n      - type: INFO\n"
        f"        message: {package} scored {score}\n        link: score_{package}\n"
    )
    writer.write(f"{_folder(package)}/{name.lower()}.yaml", _block("steps", body), "step (score)")


def _group(writer: _Writer, rng: random.Random, package: str, other: str, versions: dict[str, str]) -> None:
    name = writer.unit_name(package, "GroupStep")
    body = (
        f"  - name: {name}\n    type: step.Group\n    should_include:\n      adviser_pipeline: true\n"
        f"    match:\n      group:\n      - package_version: {{name: {package}, version: =={_absent(rng)}}}\n"
        f"      - package_version: {{name: {other}}}\n"
        f"    run:\n      not_acceptable: {package} cannot be installed with {other}\n"
        f"{_stack('ERROR', f'{package} conflicts with {other}', 'group')}"
    )
    writer.write(f"{_folder(package)}/{name.lower()}.yaml", _block("steps", body), "step.Group")


def _sieve(writer: _Writer, rng: random.Random, package: str, other: str, versions: dict[str, str]) -> None:
    name = writer.unit_name(package, "Sieve")
    gate = rng.choice(
        (
            '        cuda_version: "<11.0"\n',
            '        cudnn_version: ">=8"\n        cuda_version: ">=11.2"\n',
            "        hardware:\n        - cpu_flags:\n            not: [avx2]\n",
            "        hardware:\n        - cpu_flags: [avx2]\n",
            '        hardware:\n        - gpu_models: ["NVIDIA A100", "Tesla V100"]\n',
        )
    )
    body = (
        f"  - name: {name}\n    type: sieve\n    should_include:\n      adviser_pipeline: true\n"
        f"      runtime_environments:\n{gate}    match:\n"
        f'    - package_version: {{name: {package}, version: "=={_absent(rng)}", index_url: {INDEX_URL}}}\n'
        f'    - package_version: {{name: {package}, version: "<0.0.1"}}\n'
        f"    run:\n{_stack('WARNING', f'{package} builds here need other hardware', 'hardware')}"
    )
    writer.write(f"{_folder(package)}/{name.lower()}.yaml", _block("sieves", body), "sieve (runtime gate)")


def _pseudonym(
    writer: _Writer, rng: random.Random, package: str, other: str, versions: dict[str, str]
) -> None:
    name = writer.unit_name(package, "Pseudonym")
    # On corpus packages only under CUDA (as Thoth's tensorflow -> tensorflow-gpu): this machine has
    # none, and an alternative the folder index cannot serve would only add failing trials.
    gate = (
        '      runtime_environments:\n        cuda_version: ">=0.0"\n'
        if package in versions or rng.random() < 0.5
        else ""
    )
    body = (
        f"  - name: {name}\n    type: pseudonym\n    should_include:\n      adviser_pipeline: true\n{gate}"
        f"    match:\n    - package_version: {{name: {package}, index_url: {INDEX_URL}}}\n"
        f"    run:\n      yield:\n        yield_matched_version: true\n        package_version:\n"
        f"          name: {package}-gpu\n          index_url: {INDEX_URL}\n"
        f"{_stack('INFO', f'{package}-gpu is considered', 'gpu')}"
    )
    writer.write(f"{_folder(package)}/{name.lower()}.yaml", _block("pseudonyms", body), "pseudonym")


def _boot(writer: _Writer, rng: random.Random, package: str, other: str, versions: dict[str, str]) -> None:
    name = writer.unit_name(package, "Boot")
    body = (
        f"  - name: {name}\n    type: boot\n    should_include:\n      adviser_pipeline: true\n"
        f"    match:\n      package_name: {package}\n"
        f"    run:\n{_stack('INFO', f'{package} is a direct dependency: see its notes', 'boot')}"
    )
    writer.write(f"{_folder(package)}/{name.lower()}.yaml", _block("boots", body), "boot (package)")


def _stride(writer: _Writer, rng: random.Random, package: str, other: str, versions: dict[str, str]) -> None:
    name = writer.unit_name(package, "Stride")
    body = (
        f"  - name: {name}\n    type: stride\n    should_include:\n      adviser_pipeline: true\n"
        f"    match:\n      state:\n        resolved_dependencies:\n"
        f'        - {{name: {package}, version: "<0.0.1"}}\n        - {{name: {other}, version: ">=0"}}\n'
        f"    run:\n      not_acceptable: {package} before 0.0.1 and {other} cannot coexist\n"
        f"{_stack('ERROR', f'{package} and {other} conflict', 'stride')}"
    )
    writer.write(f"{_folder(package)}/{name.lower()}.yaml", _block("strides", body), "stride")


def _skip_from(
    writer: _Writer, rng: random.Random, package: str, other: str, versions: dict[str, str]
) -> None:
    name = writer.unit_name(package, "SkipStep")
    body = (
        f"  - name: {name}\n    type: step.SkipPackage\n    should_include:\n      adviser_pipeline: true\n"
        f"    match:\n      package_version:\n        name: {other}\n      state:\n"
        f'        package_version_from:\n        - name: {package}\n          version: "=={_absent(rng)}"\n'
        f"    run:\n{_stack('WARNING', f'{package} declares {other} but does not use it', 'skip')}"
    )
    writer.write(f"{_folder(package)}/{name.lower()}.yaml", _block("steps", body), "step.SkipPackage (from)")


def _skip_package(
    writer: _Writer, rng: random.Random, package: str, other: str, versions: dict[str, str]
) -> None:
    name = writer.unit_name(package, "SkipSieve")
    body = (
        f"  - name: {name}\n    type: sieve.SkipPackage\n    should_include:\n      adviser_pipeline: true\n"
        f"      labels:\n        {package}: skip\n    match:\n      package_name: {package}\n"
        f"    run:\n{_stack('INFO', f'{package} skipped on request', 'skip_package')}"
    )
    writer.write(
        f"{_folder(package)}/{name.lower()}.yaml", _block("sieves", body), "sieve.SkipPackage (labels)"
    )


_SHAPES = {
    "veto": _veto,
    "score": _score,
    "group": _group,
    "sieve": _sieve,
    "pseudonym": _pseudonym,
    "boot": _boot,
    "stride": _stride,
    "skip_from": _skip_from,
    "skip_package": _skip_package,
}


# -- loading ---------------------------------------------------------------------------------------

_LOAD_CHILD = r"""
import json, os, resource, sys, time
started = time.perf_counter()
import prescriptions
from prescriptions import CompileCache, load
from prescriptions import loader
imported = time.perf_counter()
tree, cache_dir = sys.argv[1], sys.argv[2]
read_started = time.perf_counter()
sources, metadata = loader._collect([tree])
loader._digest(sources, metadata)
read = time.perf_counter() - read_started
load_started = time.perf_counter()
result = load([tree], cache=CompileCache(cache_dir))
seconds = time.perf_counter() - load_started
names = [n for n in os.listdir(cache_dir) if n.endswith(".pickle")]
pickles = [os.path.getsize(os.path.join(cache_dir, n)) for n in names]
print(json.dumps({
    "import": imported - started, "read_hash": read, "load": seconds, "from_cache": result.from_cache,
    "files": len(result.files), "units": len(result.units), "instances": len(result.index),
    "problems": [str(p) for p in result.problems[:5]], "problem_count": len(result.problems),
    "pickle_bytes": max(pickles or [0]), "max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
}))
"""


@dataclass
class LoadRun:
    size: int
    cold: list[dict[str, Any]]
    warm: list[dict[str, Any]]


def load_once(tree: Path, cache_dir: Path) -> dict[str, Any]:
    done = subprocess.run(
        corpus.pinned(SERVER_CPU, [sys.executable, "-c", _LOAD_CHILD, str(tree), str(cache_dir)]),
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=1800,
    )
    if done.returncode != 0:
        raise RuntimeError(f"loading {tree} failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def measure_loading(tree: Path, size: int, repeats: int, run: Path) -> tuple[LoadRun, Path]:
    """Cold runs (each on an empty cache), then warm runs on the last cold run's cache."""
    cold, warm = [], []
    cache_dir = run / f"cache-{size}"
    for _ in range(repeats):
        shutil.rmtree(cache_dir, ignore_errors=True)
        cache_dir.mkdir()
        result = load_once(tree, cache_dir)
        if result["from_cache"]:
            raise RuntimeError("a cold load came from the cache")
        if result["problem_count"]:
            raise RuntimeError(f"the generated tree has problems: {result['problems']}")
        cold.append(result)
    for _ in range(repeats):
        result = load_once(tree, cache_dir)
        if not result["from_cache"]:
            raise RuntimeError("a warm load missed the cache")
        warm.append(result)
    return LoadRun(size, cold, warm), cache_dir


# -- resolving -------------------------------------------------------------------------------------


def write_config(state: Path, wheels: Path, port: int, tree: Path | None) -> Path:
    config = corpus.write_config(state, wheels, port)
    if tree is not None:
        data = json.loads(config.read_text())
        data["prescriptions"] = [str(tree)]
        config.write_text(json.dumps(data))
    return config


def start_proxy(
    wheels: Path, run: Path, label: str, tree: Path | None, cache_dir: Path | None
) -> tuple[Server, int, float]:
    """A fresh index-proxy on core 0; with *tree*, its compile cache seeded from *cache_dir*."""
    port = free_port()
    state = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=run))
    config = write_config(state, wheels, port, tree)
    if cache_dir is not None:
        # load_prescriptions keeps its cache beside the blob folder.
        shutil.copytree(cache_dir, state / "prescriptions")
    command = [
        str(corpus.PROJECT_BIN / "index-proxy"),
        "serve",
        "--config",
        str(config),
        "--log-level",
        "warning",
    ]
    started = time.perf_counter()
    server = Server("index-proxy", corpus.pinned(SERVER_CPU, command), state / "server.log")
    server.wait_ready(f"http://127.0.0.1:{port}/healthz", timeout=600)
    return server, port, time.perf_counter() - started


@dataclass
class Answer:
    seconds: float
    cpu: float
    pins: dict[str, str]
    justification: int
    stack_info: int
    score: float | None
    resolver_seconds: float


def call(port: int, server: Server, payload: dict[str, Any]) -> Answer:
    body = json.dumps(payload).encode()
    cpu = server.cpu_seconds()
    started = time.perf_counter()
    status, raw = corpus.post_json(f"http://127.0.0.1:{port}/api/v1/resolve", body)
    elapsed = time.perf_counter() - started
    if status != 200:
        raise RuntimeError(f"resolve answered HTTP {status}: {raw[:2000].decode(errors='replace')}")
    answer = json.loads(raw)
    advice = answer.get("advice") or {}
    return Answer(
        elapsed,
        server.cpu_seconds() - cpu,
        {corpus.canonical(p["name"]): corpus.normal_version(p["version"]) for p in answer["pins"]},
        len(advice.get("justification", ())),
        len(advice.get("stack_info", ())),
        advice.get("score"),
        answer["stats"]["resolver_seconds"],
    )


CASES = (
    ("latest", "latest (default search budget)", {"recommendation_type": "latest"}),
    (
        "stable0",
        "stable, search budget 0",
        {"recommendation_type": "stable", "search": {"budget_seconds": 0}},
    ),
)


def measure_resolving(
    wheels: Path, base: dict[str, Any], tree: Path, cache_dir: Path, run: Path, calls: int
) -> tuple[dict[tuple[str, str], list[Answer]], dict[str, float]]:
    servers: dict[str, tuple[Server, int]] = {}
    startup: dict[str, float] = {}
    results: dict[tuple[str, str], list[Answer]] = {}
    try:
        for label, rules in (("without", None), ("with", tree)):
            server, port, seconds = start_proxy(wheels, run, label, rules, cache_dir if rules else None)
            servers[label] = (server, port)
            startup[label] = seconds
        for server, port in servers.values():
            for _, _, extra in CASES:
                for _ in range(3):  # cold, then two warm calls
                    call(port, server, {**base, **extra})
        for _ in range(calls):
            for key, _, extra in CASES:
                for label, (server, port) in servers.items():
                    results.setdefault((label, key), []).append(call(port, server, {**base, **extra}))
    finally:
        for server, _ in servers.values():
            server.stop()
    return results, startup


def profile_in_process(
    wheels: Path, base: dict[str, Any], tree: Path, cache_dir: Path, run: Path, calls: int
) -> list[str]:
    """cProfile of warm calls with the 60k tree, in this process (index-proxy's services, no HTTP)."""
    import asyncio

    from index_proxy.api_resolve import resolve_request
    from index_proxy.config import load_config
    from index_proxy.services import open_services

    state = Path(tempfile.mkdtemp(prefix="profile-", dir=run))
    config = load_config(write_config(state, wheels, free_port(), tree))
    shutil.copytree(cache_dir, state / "prescriptions")
    lines: list[str] = []

    async def main() -> None:
        async with open_services(config) as services:
            for _key, label, extra in CASES:
                payload = {**base, **extra}
                for _ in range(3):
                    await resolve_request(services, payload, "http://127.0.0.1")
                profiler = cProfile.Profile()
                profiler.enable()
                for _ in range(calls):
                    await resolve_request(services, payload, "http://127.0.0.1")
                profiler.disable()
                lines.extend(summarize(pstats.Stats(profiler, stream=io.StringIO()), calls, label))

    with asyncio.Runner(loop_factory=corpus._loop_factory()) as runner:
        runner.run(main())
    return lines


def summarize(stats: pstats.Stats, calls: int, label: str, top: int = 15) -> list[str]:
    entries = stats.stats  # type: ignore[attr-defined]
    total = sum(value[2] for value in entries.values())
    lines = [
        f"cProfile, {label}, {calls} warm calls: {total / calls * 1000:.1f} ms per call under the profiler"
    ]
    lines.append("own time, top functions (ms per call, calls per resolve):")
    for key, (_cc, nc, tt, _ct, _callers) in sorted(entries.items(), key=lambda i: i[1][2], reverse=True)[
        :top
    ]:
        lines.append(f"  {tt / calls * 1000:7.2f}  {nc / calls:8.0f}  {corpus._frame(key)}")
    ours = [
        (key, value)
        for key, value in entries.items()
        if "/prescriptions/" in key[0] and "benchmarks" not in key[0]
    ]
    lines.append("cumulative, prescriptions/ functions (ms per call, calls per resolve):")
    for key, (_cc, nc, _tt, ct, _callers) in sorted(ours, key=lambda i: i[1][3], reverse=True)[:top]:
        lines.append(f"  {ct / calls * 1000:7.2f}  {nc / calls:8.0f}  {corpus._frame(key)}")
    return lines


# -- report ----------------------------------------------------------------------------------------


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def machine_notes(load_before: str, load_after: str, busy_before: str, busy_after: str) -> list[str]:
    model, memory = cpu_model_and_memory()
    changed = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--", "index_proxy", "resolver", "prescriptions"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    head = first_line(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    pins = (
        f"loading runs and index-proxy pinned to core {SERVER_CPU}, this script and its HTTP client to core "
        f"{CLIENT_CPU} (taskset)"
        if corpus.PIN
        else "no CPU pinning"
    )
    return [
        f"CPU: {os.cpu_count()} x {model}, {memory}; Linux {platform.release()}; "
        f"Python {platform.python_version()}; shared with other processes",
        pins,
        f"index-proxy commit {head}" + (" plus uncommitted changes" if changed else ""),
        f"load average (1/5/15 min) before: {load_before}; after: {load_after}",
        f"other busy processes (share of a core, 1 s samples) at start: {busy_before}; at end: {busy_after}",
    ]


def render(
    command: str,
    trees: dict[int, TreeStats],
    loads: list[LoadRun],
    results: dict[tuple[str, str], list[Answer]],
    startup: dict[str, float],
    notes: list[str],
    profile: list[str],
) -> tuple[str, bool]:
    md = [f"Command: `{command}`", "", *[f"- {note}" for note in notes], ""]
    biggest = trees[max(trees)]
    kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(biggest.units.items(), key=lambda i: -i[1]))
    md += [
        f"Generated trees (`benchmarks/.cache/prescriptions-<size>`), about {FILES_PER_PACKAGE} files a "
        f"package, one unit a file; the {max(trees)} tree: {biggest.packages} packages "
        f"({biggest.corpus_packages} of them the resolve corpus's), units by shape: {kinds}.",
        "",
        "| unit files | units | instances | packages | cold load s | per file µs | warm load s | per file µs "
        "| of which read + hash s | import s | pickle MiB | RSS MiB (cold / warm) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for load in loads:
        cold = _median([r["load"] for r in load.cold])
        warm = _median([r["load"] for r in load.warm])
        files = load.cold[0]["files"]
        md.append(
            f"| {files} | {load.cold[0]['units']} | {load.cold[0]['instances']} "
            f"| {trees[load.size].packages} "
            f"| {cold:.2f} | {cold / files * 1e6:.0f} | {warm:.3f} | {warm / files * 1e6:.0f} "
            f"| {_median([r['read_hash'] for r in load.warm]):.3f} "
            f"| {_median([r['import'] for r in load.warm]):.2f} "
            f"| {load.cold[0]['pickle_bytes'] / 2**20:.1f} "
            f"| {max(r['max_rss_kib'] for r in load.cold) / 1024:.0f} "
            f"/ {max(r['max_rss_kib'] for r in load.warm) / 1024:.0f} |"
        )
    md += [
        "",
        f"Proxy start to `/healthz` ready: without prescriptions {startup.get('without', 0):.2f} s, with the "
        f"{RESOLVE_SIZE} tree (warm compile cache) {startup.get('with', 0):.2f} s.",
        "",
        "| case | proxy | median ms | p90 ms | proxy CPU ms (mean, 10 ms ticks) | resolver ms | pins "
        "| justification "
        "| stack_info | score |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    met_all = True
    summary = []
    for key, label, _ in CASES:
        for proxy in ("without", "with"):
            answers = results.get((proxy, key), [])
            if not answers:
                continue
            walls = sorted(a.seconds for a in answers)
            p90 = walls[min(len(walls) - 1, int(len(walls) * 0.9))]
            last = answers[-1]
            md.append(
                f"| {label} | {proxy} | {_median(walls) * 1000:.1f} | {p90 * 1000:.1f} "
                f"| {statistics.mean([a.cpu for a in answers]) * 1000:.1f} "
                f"| {_median([a.resolver_seconds for a in answers]) * 1000:.1f} | {len(last.pins)} "
                f"| {last.justification} | {last.stack_info} "
                f"| {'' if last.score is None else f'{last.score:.2f}'} |"
            )
        without, with_ = results.get(("without", key)), results.get(("with", key))
        if without and with_:
            wall_without = _median([a.seconds for a in without])
            wall_with = _median([a.seconds for a in with_])
            added = (wall_with - wall_without) * 1000
            same = all(a.pins == without[0].pins for a in [*without, *with_])
            met = added < GOAL_ADDED_MS
            met_all = met_all and met
            summary.append(
                f"| {label} | {added:+.1f} | {wall_with / wall_without:.2f} | < {GOAL_ADDED_MS:g} ms "
                f"| {yes(met)} | {'identical' if same else '**differ**'} |"
            )
    md += [
        "",
        f"With the {RESOLVE_SIZE} tree against without (medians of wall time at the client):",
        "",
        "| case | added ms | ratio | goal | met | pins |",
        "| --- | ---: | ---: | --- | --- | --- |",
        *summary,
    ]
    if profile:
        md += ["", "```", *profile, "```"]
    return "\n".join(md) + "\n", met_all


# -- main ------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one load of each kind, 10 resolve calls")
    parser.add_argument("--repeats", type=int, help="loads of each kind and size (default 3, --quick 1)")
    parser.add_argument("--calls", type=int, help="warm resolve calls per case and proxy (default 30)")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="tree sizes in unit files")
    parser.add_argument(
        "--profile", action="store_true", help="always profile (default: when the goal is missed)"
    )
    parser.add_argument("--profile-calls", type=int, default=30, help="warm calls profiled per case")
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to cores")
    parser.add_argument("--markdown", type=Path, help="write the results as a markdown fragment here")
    args = parser.parse_args(argv)
    args.repeats = max(1, args.repeats or (1 if args.quick else 3))
    args.calls = max(1, args.calls or (10 if args.quick else 30))
    if RESOLVE_SIZE not in args.sizes:
        args.sizes.append(RESOLVE_SIZE)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    global SERVER_CPU, CLIENT_CPU
    args = parse_args(argv)
    shown = sys.argv[1:] if argv is None else list(argv)
    command = " ".join([".venv/bin/python benchmarks/prescriptions.py", *shown])
    corpus.PIN = not args.no_pin
    if (os.cpu_count() or 1) < 2:
        SERVER_CPU = CLIENT_CPU = 0
    corpus.SERVER_CPU, corpus.CLIENT_CPU = SERVER_CPU, CLIENT_CPU
    if corpus.PIN:
        with contextlib.suppress(OSError, AttributeError):
            os.sched_setaffinity(0, {CLIENT_CPU})
    load_before, busy_before = corpus.load_average(), other_busy_processes()
    wheels = corpus.build_corpus(False)
    versions = corpus_versions(wheels)
    trees = {size: generate_tree(size, versions) for size in sorted(set(args.sizes))}
    base = corpus.resolve_payload(corpus.machine_environment())
    with scratch_dir("index-proxy-prescriptions-bench-") as run:
        loads = []
        caches = {}
        for size, (tree, _stats) in trees.items():
            log(f"loading the {size} tree: {args.repeats} cold and {args.repeats} warm runs")
            load, caches[size] = measure_loading(tree, size, args.repeats, run)
            loads.append(load)
        tree = trees[RESOLVE_SIZE][0]
        log(f"resolving: {args.calls} warm calls per case and proxy")
        results, startup = measure_resolving(wheels, base, tree, caches[RESOLVE_SIZE], run, args.calls)
        missed = any(
            (
                _median([a.seconds for a in results[("with", key)]])
                - _median([a.seconds for a in results[("without", key)]])
            )
            * 1000
            >= GOAL_ADDED_MS
            for key, _, _ in CASES
        )
        profile: list[str] = []
        if args.profile or missed:
            if corpus.PIN:
                with contextlib.suppress(OSError, AttributeError):
                    os.sched_setaffinity(0, {SERVER_CPU})
            log(f"cProfile of {args.profile_calls} warm calls per case in-process")
            profile = profile_in_process(wheels, base, tree, caches[RESOLVE_SIZE], run, args.profile_calls)
    notes = machine_notes(load_before, corpus.load_average(), busy_before, other_busy_processes())
    raw = {
        "loads": [load.__dict__ for load in loads],
        "resolve": {
            f"{proxy} {key}": [a.__dict__ for a in answers] for (proxy, key), answers in results.items()
        },
        "startup": startup,
    }
    (CACHE / "prescriptions-last-run.json").write_text(json.dumps(raw, indent=1))
    markdown, _met = render(
        command, {size: stats for size, (_, stats) in trees.items()}, loads, results, startup, notes, profile
    )
    print(re.sub(r"\*\*|`", "", markdown))
    if args.markdown:
        args.markdown.write_text(markdown)
        log(f"markdown fragment written to {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
