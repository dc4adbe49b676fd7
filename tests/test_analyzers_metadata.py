"""Core metadata parsing (every error kept) and filename/.dist-info/METADATA consistency."""

from __future__ import annotations

from pathlib import Path

from support.wheels import build_wheel, read_wheel_metadata

from analyzers.facts import CoreMetadataFacts
from analyzers.metadata import check_consistency, parse_core_metadata


def codes(findings: list) -> list[str]:
    return [finding.code for finding in findings]


def test_parses_a_real_wheels_metadata(wheel_dir: Path) -> None:
    path = build_wheel(
        wheel_dir, "Acme.Utils", "1.2", requires_dist=["beta (>=2)", "gamma; extra == 'fast'"],
        requires_python=">=3.9",
    )  # fmt: skip
    facts = parse_core_metadata(read_wheel_metadata(path), "wheel")
    assert facts == CoreMetadataFacts(
        source="wheel",
        metadata_version="2.1",
        name="Acme.Utils",
        version="1.2",
        requires_python=">=3.9",
        requires_dist=("beta>=2", 'gamma; extra == "fast"'),
    )


def test_every_error_is_kept_and_raw_values_survive() -> None:
    data = (
        b"Metadata-Version: 2.1\n"
        b"Name: acme\n"
        b"Version: not a version\n"
        b"License-Expression: MIT\n"
        b"Requires-Dist: beta >= 2\n"
        b"Requires-Dist: this is ;; not a requirement\n"
        b"Requires-Python: >=3.8 ; os_name == 'nt'\n"
        b"Foo: bar\n\n"
    )
    facts = parse_core_metadata(data, "sdist")
    assert facts.source == "sdist"
    assert (facts.name, facts.version) == ("acme", "not a version")
    assert facts.requires_dist == ("beta >= 2", "this is ;; not a requirement")
    joined = "\n".join(facts.errors)
    for fragment in ("'foo'", "license-expression", "'version'", "requires-dist", "requires-python"):
        assert fragment in joined, (fragment, facts.errors)
    assert len(facts.errors) == 5


def test_single_use_field_given_twice_is_an_error() -> None:
    facts = parse_core_metadata(b"Metadata-Version: 2.1\nName: a\nName: b\nVersion: 1\n\n", "wheel")
    assert facts.name is None
    assert any("'name'" in error for error in facts.errors)


def test_empty_metadata_reports_required_fields() -> None:
    facts = parse_core_metadata(b"", "wheel")
    assert facts.name is None and facts.version is None
    assert len(facts.errors) >= 3  # metadata-version, name and version are all required


def test_consistent_wheel_has_no_findings(wheel_dir: Path) -> None:
    path = build_wheel(wheel_dir, "Acme.Utils", "1.0")
    metadata = parse_core_metadata(read_wheel_metadata(path), "wheel")
    assert check_consistency(path.name, "acme_utils-1.0.dist-info", metadata) == []


def test_versions_compare_after_normalization() -> None:
    metadata = CoreMetadataFacts(source="wheel", name="ACME_utils", version="1.0.0")
    assert check_consistency("acme_utils-1.0-py3-none-any.whl", "Acme.Utils-1.0.dist-info", metadata) == []


def test_metadata_name_mismatch(wheel_dir: Path) -> None:
    path = build_wheel(wheel_dir, "acme", "1.0", metadata_name="evil-twin")
    metadata = parse_core_metadata(read_wheel_metadata(path), "wheel")
    findings = check_consistency(path.name, "acme-1.0.dist-info", metadata)
    assert codes(findings) == ["metadata-name-mismatch"]
    assert findings[0].severity == "error"
    assert "evil-twin" in findings[0].message


def test_version_mismatches_in_directory_and_metadata() -> None:
    metadata = CoreMetadataFacts(source="wheel", name="acme", version="2.0")
    findings = check_consistency("acme-1.0-py3-none-any.whl", "acme-1.1.dist-info", metadata)
    assert codes(findings) == ["metadata-version-mismatch", "metadata-version-mismatch"]
    assert "'1.1'" in findings[0].message and "'2.0'" in findings[1].message


def test_directory_name_mismatch() -> None:
    metadata = CoreMetadataFacts(source="wheel", name="acme", version="1.0")
    findings = check_consistency("acme-1.0-py3-none-any.whl", "other-1.0.dist-info", metadata)
    assert codes(findings) == ["metadata-name-mismatch"]


def test_invalid_metadata_gives_one_finding_per_error() -> None:
    metadata = CoreMetadataFacts(source="wheel", name="acme", version="1.0", errors=("one", "two"))
    findings = check_consistency("acme-1.0-py3-none-any.whl", None, metadata)
    assert codes(findings) == ["invalid-metadata", "invalid-metadata"]
    assert [f.message for f in findings] == ["one", "two"]


def test_missing_metadata_file() -> None:
    findings = check_consistency("acme-1.0-py3-none-any.whl", "acme-1.0.dist-info", None)
    assert codes(findings) == ["missing-metadata"]
    assert findings[0].severity == "error"


def test_invalid_filename() -> None:
    metadata = CoreMetadataFacts(source="wheel", name="acme", version="1.0")
    assert codes(check_consistency("acme.whl", None, metadata)) == ["invalid-filename"]


def test_sdist_names_legacy_and_normalized() -> None:
    metadata = CoreMetadataFacts(source="sdist", name="Foo-Bar", version="1.0")
    assert check_consistency("Foo-Bar-1.0.tar.gz", "Foo-Bar-1.0", metadata) == []
    assert check_consistency("foo_bar-1.0.zip", "foo_bar-1.0", metadata) == []
    findings = check_consistency("foo_bar-1.0.tar.gz", "foo_bar-1.1", metadata)
    assert codes(findings) == ["metadata-version-mismatch"]
