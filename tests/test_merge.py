"""The merge rules (DESIGN.md 1-5) as a pure function of configuration and pages."""

from __future__ import annotations

import pytest

from index_proxy.config import HardwareSpec, IndexConfig
from index_proxy.merge import (
    HASH_CONFLICT,
    OWNED_ELSEWHERE,
    SHADOWED,
    Undecidable,
    file_id_of,
    indexes_to_ask,
    merge_project,
)
from index_proxy.simple.model import DistributionFile, ProjectPage

INTERNAL = IndexConfig(name="internal", url="http://127.0.0.1:1/simple/", owns=("acme-*",))
AVX2 = IndexConfig(
    name="avx2",
    url="http://127.0.0.1:2/simple/",
    only=("fastmath",),
    hardware=HardwareSpec(cpu_features=("avx2",)),
)
PUBLIC = IndexConfig(name="public", url="http://127.0.0.1:3/simple/")
MIRROR = IndexConfig(name="mirror", url="http://127.0.0.1:4/simple/")
INDEXES = (INTERNAL, AVX2, PUBLIC)


def wheel(filename: str, sha: str = "", **kw: object) -> DistributionFile:
    return DistributionFile(
        filename=filename, url=f"http://x/{filename}", hashes={"sha256": sha} if sha else {}, **kw
    )  # type: ignore[arg-type]


def page(name: str, *files: DistributionFile) -> ProjectPage:
    return ProjectPage(name=name, files=files)


class TestOwns:
    def test_owner_serves_alone_and_drops_are_events(self) -> None:
        pages = {
            "internal": page("acme-utils", wheel("acme_utils-1.0-py3-none-any.whl", "a" * 64)),
            "public": page(
                "acme-utils",
                wheel("acme_utils-99.0-py3-none-any.whl", "b" * 64),
                wheel("Acme_Utils-100.0-py3-none-any.whl", "c" * 64),
            ),
        }
        merged = merge_project(INDEXES, "acme-utils", pages, {}).merged
        assert merged is not None
        assert merged.source == "internal"
        assert [served.file.filename for served in merged.files] == ["acme_utils-1.0-py3-none-any.whl"]
        assert merged.versions_of(merged.files) == ("1.0",)
        assert {(e.kind, e.filename, e.index_name, e.kept_index) for e in merged.events} == {
            (OWNED_ELSEWHERE, "acme_utils-99.0-py3-none-any.whl", "public", "internal"),
            (OWNED_ELSEWHERE, "Acme_Utils-100.0-py3-none-any.whl", "public", "internal"),
        }

    def test_owned_name_missing_on_owner_is_not_found_even_if_public_has_it(self) -> None:
        pages = {
            "internal": None,
            "public": page("acme-new", wheel("acme_new-1.0-py3-none-any.whl", "d" * 64)),
        }
        outcome = merge_project(INDEXES, "acme-new", pages, {})
        assert outcome.merged is None
        assert outcome.owner == "internal"
        # The attack the guard exists for: an owned name published elsewhere. It is an event.
        assert [(e.kind, e.filename, e.index_name) for e in outcome.events] == [
            (OWNED_ELSEWHERE, "acme_new-1.0-py3-none-any.whl", "public")
        ]

    def test_owner_down_is_undecidable(self) -> None:
        pages = {"public": page("acme-utils", wheel("acme_utils-99.0-py3-none-any.whl", "b" * 64))}
        with pytest.raises(Undecidable, match="internal"):
            merge_project(INDEXES, "acme-utils", pages, {"internal": "connection refused"})


class TestFirstIndex:
    def test_highest_priority_index_with_the_project_serves_it(self) -> None:
        indexes = (MIRROR, PUBLIC)
        pages = {
            "mirror": page("requests", wheel("requests-2.0-py3-none-any.whl", "1" * 64)),
            "public": page("requests", wheel("requests-3.0-py3-none-any.whl", "2" * 64)),
        }
        merged = merge_project(indexes, "requests", pages, {}).merged
        assert merged is not None
        assert merged.source == "mirror"
        assert [s.file.filename for s in merged.files] == ["requests-2.0-py3-none-any.whl"]
        assert [(e.kind, e.filename) for e in merged.events] == [(SHADOWED, "requests-3.0-py3-none-any.whl")]

    def test_falls_through_when_higher_index_lacks_project(self) -> None:
        indexes = (MIRROR, PUBLIC)
        pages = {"mirror": None, "public": page("requests", wheel("requests-3.0-py3-none-any.whl", "2" * 64))}
        merged = merge_project(indexes, "requests", pages, {}).merged
        assert merged is not None and merged.source == "public"
        assert merged.events == ()

    def test_unavailable_higher_index_refuses_rather_than_guess(self) -> None:
        indexes = (MIRROR, PUBLIC)
        pages = {"public": page("requests", wheel("requests-3.0-py3-none-any.whl", "2" * 64))}
        with pytest.raises(Undecidable, match="mirror"):
            merge_project(indexes, "requests", pages, {"mirror": "timed out"})

    def test_nobody_has_it(self) -> None:
        assert merge_project((MIRROR, PUBLIC), "nothing", {"mirror": None, "public": None}, {}).merged is None


class TestOnly:
    def test_only_limits_what_an_index_is_asked_for(self) -> None:
        assert [i.name for i in indexes_to_ask(INDEXES, "fastmath")] == ["internal", "avx2", "public"]
        assert [i.name for i in indexes_to_ask(INDEXES, "numpy")] == ["internal", "public"]


class TestHardwareVariants:
    def test_variant_files_join_the_serving_page_marked(self) -> None:
        pages = {
            "internal": None,
            "avx2": page("fastmath", wheel("fastmath-1.0-cp311-cp311-linux_x86_64.whl", "e" * 64)),
            "public": page("fastmath", wheel("fastmath-1.0-cp311-cp311-manylinux2014_x86_64.whl", "f" * 64)),
        }
        merged = merge_project(INDEXES, "fastmath", pages, {}).merged
        assert merged is not None and merged.source == "public"
        by_name = {s.file.filename: s for s in merged.files}
        assert by_name["fastmath-1.0-cp311-cp311-linux_x86_64.whl"].hardware == HardwareSpec(
            cpu_features=("avx2",)
        )
        assert by_name["fastmath-1.0-cp311-cp311-manylinux2014_x86_64.whl"].hardware is None
        assert merged.events == ()

    def test_same_filename_different_hash_keeps_higher_priority(self) -> None:
        name = "fastmath-1.0-cp311-cp311-linux_x86_64.whl"
        pages = {
            "internal": None,
            "avx2": page("fastmath", wheel(name, "e" * 64)),
            "public": page("fastmath", wheel(name, "9" * 64)),
        }
        merged = merge_project(INDEXES, "fastmath", pages, {}).merged
        assert merged is not None
        assert [(s.index, s.file.sha256) for s in merged.files] == [("avx2", "e" * 64)]
        assert [(e.kind, e.index_name, e.kept_index) for e in merged.events] == [
            (HASH_CONFLICT, "public", "avx2")
        ]

    def test_variant_copy_never_hides_the_same_generic_bytes(self) -> None:
        name = "fastmath-1.0-cp311-cp311-linux_x86_64.whl"
        pages = {
            "internal": None,
            "avx2": page("fastmath", wheel(name, "e" * 64)),
            "public": page("fastmath", wheel(name, "e" * 64)),
        }
        merged = merge_project(INDEXES, "fastmath", pages, {}).merged
        assert merged is not None
        assert [(s.index, s.hardware) for s in merged.files] == [("public", None)]

    def test_same_filename_same_hash_is_not_an_event(self) -> None:
        name = "fastmath-1.0-cp311-cp311-linux_x86_64.whl"
        pages = {
            "internal": None,
            "avx2": page("fastmath", wheel(name, "e" * 64)),
            "public": page("fastmath", wheel(name, "e" * 64)),
        }
        merged = merge_project(INDEXES, "fastmath", pages, {}).merged
        assert merged is not None and len(merged.files) == 1 and merged.events == ()


def test_file_id_is_sha256_or_a_stable_digest_of_location() -> None:
    assert file_id_of("public", wheel("a-1.0-py3-none-any.whl", "AB" * 32)) == "ab" * 32
    unhashed = wheel("a-1.0-py3-none-any.whl")
    assert file_id_of("public", unhashed) == file_id_of("public", unhashed)
    assert file_id_of("public", unhashed) != file_id_of("mirror", unhashed)
    assert file_id_of("public", unhashed).startswith("u")
