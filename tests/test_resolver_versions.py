"""Candidate arrays and specifier → index-set evaluation (resolver._versions)."""

from __future__ import annotations

import random

import numpy as np
import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from resolver import Candidate
from resolver._versions import ProjectVersions, bounds_to_mask, mask_to_bounds
from resolver.models import PrereleaseMode

PYTHON = Version("3.11.4")


def project(
    versions: dict[str, dict],
    *,
    mode: PrereleaseMode = "if-necessary-or-explicit",
    explicit: bool = False,
    pins: tuple[str, ...] = (),
) -> ProjectVersions:
    return ProjectVersions(
        "p",
        [Candidate(v, **info) for v, info in versions.items()],
        python=PYTHON,
        mode=mode,
        explicit_prerelease=explicit,
        yanked_pins=[SpecifierSet(p) for p in pins],
        python_cache={},
    )


def admitted(p: ProjectVersions, specifier: str) -> list[str]:
    return [p.strings[i] for i in np.flatnonzero(p.allowed(SpecifierSet(specifier)))]


# Versions of every PEP 440 shape, to check the bisection against a version-by-version scan.
SHAPES = [
    "0.9", "1.0.dev1", "1.0a1", "1.0a2.dev3", "1.0b1", "1.0rc1", "1.0", "1.0+local", "1.0.post1",
    "1.0.post1+l", "1.0.1", "1.1.dev0", "1.1", "2.0rc1", "2.0", "2.0.post2", "2!0.5", "10.0", "1.0.0.0.1",
]  # fmt: skip


def random_version(rng: random.Random) -> str:
    text = f"{rng.randint(1, 2)}!" if rng.random() < 0.1 else ""
    text += ".".join(str(rng.randint(0, 3)) for _ in range(rng.randint(1, 4)))
    if rng.random() < 0.3:
        text += rng.choice(["a", "b", "rc"]) + str(rng.randint(0, 2))
    if rng.random() < 0.25:
        text += f".post{rng.randint(0, 2)}"
    if rng.random() < 0.25:
        text += f".dev{rng.randint(0, 2)}"
    if rng.random() < 0.2:
        text += f"+l{rng.randint(0, 2)}"
    return text


@pytest.mark.parametrize("seed", range(40))
def test_specifiers_evaluate_exactly(seed: int) -> None:
    """The bisection of ordered comparisons (and the scan of the rest) equals packaging's answer
    version by version, over pre-, post-, dev-, local and epoch versions."""
    rng = random.Random(seed)
    pool = SHAPES + [random_version(rng) for _ in range(40)]
    p = project({v: {} for v in rng.sample(pool, rng.randint(1, len(pool)))})
    for _ in range(40):
        operator = rng.choice([">=", ">", "<=", "<", ">=", ">", "<=", "<", "==", "!=", "~="])
        target = rng.choice(pool)
        if operator not in ("==", "!="):
            target = target.split("+")[0]  # only == and != take a local version
        if operator == "~=" and len(Version(target).release) < 2:
            continue  # ~= needs at least two release components
        specifier = SpecifierSet(f"{operator}{target}")
        scan = [specifier.contains(v, prereleases=True) for v in p.versions]
        assert p.match(specifier).tolist() == scan, (specifier, p.strings)


class TestAdmission:
    def test_prereleases_only_when_needed_or_named(self) -> None:
        p = project({"1.0": {}, "2.0b1": {}, "2.0": {"yanked": True}})
        assert admitted(p, "") == ["1.0"]
        assert admitted(p, ">1.0") == ["2.0b1"]  # no usable final release: pre-releases admitted
        assert admitted(p, ">=2.0b1") == ["2.0b1"]  # named
        assert admitted(p, "==2.0") == ["2.0"]  # a yanked version, pinned exactly
        assert admitted(p, "==2.*") == ["2.0b1"]  # a wildcard is no exact pin

    def test_modes(self) -> None:
        versions = {"1.0": {}, "2.0b1": {}}
        assert admitted(project(versions, mode="allow"), "") == ["1.0", "2.0b1"]
        assert admitted(project(versions, mode="disallow"), ">=2.0b1") == []
        assert admitted(project(versions, explicit=True), "") == ["1.0", "2.0b1"]

    def test_direct_pins_admit_a_yanked_version_everywhere(self) -> None:
        p = project({"1.0": {}, "2.0": {"yanked": True}}, pins=(">=1,==2.0",))
        assert admitted(p, ">=1") == ["1.0", "2.0"]

    def test_requires_python_failures_do_not_count_as_usable_finals(self) -> None:
        p = project({"1.0": {}, "2.0": {"requires_python": ">=3.12"}, "2.1b1": {}})
        assert admitted(p, ">=2") == ["2.0", "2.1b1"]
        assert p.python_incompatible_runs() == [(1, 2, ">=3.12")]

    def test_equal_versions_keep_the_best_candidate(self) -> None:
        p = project({"1.0": {"preference": 2.0}, "1.0.0": {"yanked": True, "preference": 9.0}, "01.0": {}})
        assert p.strings == ("1.0",)
        assert p.index_of("1.0.0") == 0 and p.index_of("nonsense") is None


@pytest.mark.parametrize(
    ("mask", "text"),
    [
        ([1, 1, 1, 1], ""),
        ([0, 1, 0, 0], "==1.1"),
        ([1, 1, 0, 0], "<2.0"),
        ([0, 0, 1, 1], ">=2.0"),
        ([0, 1, 1, 0], ">=1.1,<3.0"),
        ([1, 0, 0, 1], "==1.0 | ==3.0"),
    ],
)
def test_describe(mask: list[int], text: str) -> None:
    p = project({"1.0": {}, "1.1": {}, "2.0": {}, "3.0": {}})
    assert p.describe(np.array(mask, dtype=bool)) == text


def test_describe_skips_hidden_versions() -> None:
    p = project({"1.0": {}, "2.0b1": {}, "2.0": {}, "3.0": {"yanked": True}})
    assert p.describe(np.array([1, 0, 1, 0], dtype=bool)) == ""
    assert p.describe(np.array([0, 1, 0, 0], dtype=bool)) == "==2.0b1"


def test_bounds_round_trip() -> None:
    mask = np.array([0, 1, 1, 0, 1], dtype=bool)
    assert mask_to_bounds(mask).tolist() == [1, 3, 4, 5]
    assert bounds_to_mask([1, 3, 4, 5], 5).tolist() == mask.tolist()
    assert mask_to_bounds(np.zeros(3, dtype=bool)).tolist() == []


def test_hints() -> None:
    p = project({"1.0": {}, "2.0b1": {}, "3.0": {"yanked": True}})
    assert p.hint(SpecifierSet(">=3")) == "3.0 is yanked"
    assert p.hint(SpecifierSet("==9")) == "the versions of p are 1.0, 2.0b1, 3.0"
    assert project({}).hint(SpecifierSet()) == "no versions of p were found"
