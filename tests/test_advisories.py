"""OSV records into Advisory objects: real records from the PyPA advisory database, and broken ones."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from packaging.version import Version

from prescriptions.advisories import Advisory, InvalidAdvisory, OsvRecord, parse_osv, parse_osv_text

DATA = Path(__file__).parent / "data" / "advisories" / "vulns"


def record(project: str, record_id: str) -> OsvRecord:
    path = DATA / project / f"{record_id}.yaml"
    return parse_osv_text(path.read_bytes(), f"vulns/{project}/{record_id}.yaml")


def only(project: str, record_id: str) -> Advisory:
    (advisory,) = record(project, record_id).advisories
    return advisory


def affected(advisory: Advisory, *versions: str) -> list[str]:
    return [text for text in versions if advisory.affects(Version(text))]


def test_fields_of_a_real_record() -> None:
    advisory = only("pillow", "PYSEC-2021-317")
    assert advisory.id == "PYSEC-2021-317"
    assert advisory.package == "pillow"
    assert advisory.aliases == ("CVE-2021-23437", "SNYK-PYTHON-PILLOW-1319443", "GHSA-98vv-pw6r-q6q4")
    assert advisory.cves == ("CVE-2021-23437",)
    assert advisory.details.startswith("The package pillow from 0 and before 8.3.2")
    assert advisory.summary == ""
    assert advisory.title == advisory.details.strip()
    assert advisory.modified == datetime(2021, 9, 3, 18, 35, 52, 828411, tzinfo=UTC)
    assert advisory.published == datetime(2021, 9, 3, 16, 15, tzinfo=UTC)
    assert advisory.withdrawn is None
    assert advisory.version_range == "<8.3.2"
    assert advisory.problems == ()
    assert Version("8.3.0") in advisory.versions
    assert affected(advisory, "0.1", "8.3.0", "8.3.1", "8.3.2", "9.0") == ["0.1", "8.3.0", "8.3.1"]


def test_link_prefers_an_advisory_reference_then_web() -> None:
    # references: WEB snyk first, then ADVISORY github: the ADVISORY wins although it comes later
    assert only("numpy", "PYSEC-2021-855").link.startswith("https://")
    record_data: dict[str, Any] = {
        "id": "X-1",
        "modified": "2024-01-01T00:00:00Z",
        "affected": [],
        "references": [
            {"type": "FIX", "url": "https://fix.example/1"},
            {"type": "WEB", "url": "https://web.example/1"},
            {"type": "ADVISORY", "url": "https://advisory.example/1"},
        ],
    }
    assert parse_osv(record_data, "x.json").id == "X-1"
    with_package = {**record_data, "affected": [{"package": {"ecosystem": "PyPI", "name": "A_B"}}]}
    (advisory,) = parse_osv(with_package, "x.json").advisories
    assert advisory.link == "https://advisory.example/1"
    assert advisory.package == "a-b"
    del with_package["references"][2]
    assert parse_osv(with_package, "x.json").advisories[0].link == "https://web.example/1"
    del with_package["references"][1]
    assert parse_osv(with_package, "x.json").advisories[0].link == "https://fix.example/1"
    del with_package["references"]
    assert parse_osv(with_package, "x.json").advisories[0].link == "https://osv.dev/vulnerability/X-1"


def test_introduced_and_fixed_pairs_in_one_range() -> None:
    advisory = only("tensorflow", "PYSEC-2021-412")
    assert advisory.version_range == ">=2.6.0,<2.6.1 || >=2.7.0rc0,<2.7.0"
    assert affected(advisory, "2.5.9", "2.6.0", "2.6.1", "2.7.0rc0", "2.7.0rc1", "2.7.0") == [
        "2.6.0",
        "2.7.0rc0",
        "2.7.0rc1",
    ]


def test_a_prerelease_bound() -> None:
    advisory = only("tensorflow", "PYSEC-2019-206")
    assert advisory.version_range == "<1.7.0rc0"
    assert affected(advisory, "1.6.0", "1.7.0rc0", "1.7.0") == ["1.6.0"]


def test_last_affected_and_one_package_in_several_entries() -> None:
    advisory = only("keystone", "PYSEC-2018-152")
    assert advisory.version_range == ">=9.0.0,<=9.3.0 || >=10.0.0,<10.0.2 || >=11.0.0,<11.0.1"
    versions = ("8.9", "9.0.0", "9.3.0", "9.3.1", "10.0.1", "10.0.2", "11.0.0", "11.0.1")
    assert affected(advisory, *versions) == ["9.0.0", "9.3.0", "10.0.1", "11.0.0"]
    last = only("py", "PYSEC-2022-42969")
    assert last.version_range == "<=1.11.0"
    assert affected(last, "1.11.0", "1.11.0.post1", "1.12") == ["1.11.0"]


def test_duplicate_entries_merge_into_one_advisory() -> None:
    moin = record("moin", "PYSEC-2008-12")
    assert [a.package for a in moin.advisories] == ["moin"]
    assert moin.advisories[0].version_range == "<1.6.3 || >=1.7,<1.7.1"
    assert moin.advisories[0].versions == (Version("1.7"),)


def test_explicit_versions_affect_even_outside_the_ranges() -> None:
    data = {
        "id": "X-2",
        "modified": "2024-01-01T00:00:00Z",
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "demo"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "2.0"}, {"fixed": "2.1"}]}],
                "versions": ["1.0", "2.0"],
            }
        ],
    }
    (advisory,) = parse_osv(data, "x.json").advisories
    assert affected(advisory, "0.9", "1.0", "1.0.1", "2.0", "2.0.5", "2.1") == ["1.0", "2.0", "2.0.5"]
    assert advisory.version_range == ">=2.0,<2.1 || ==1.0"
    only_versions = {**data, "affected": [{**data["affected"][0], "ranges": []}]}  # type: ignore[dict-item]
    (listed,) = parse_osv(only_versions, "x.json").advisories
    assert listed.version_range == "==1.0 || ==2.0"
    assert affected(listed, "1.0", "1.5", "2.0") == ["1.0", "2.0"]


def test_semver_ranges_limit_and_git_ranges() -> None:
    data = {
        "id": "X-3",
        "modified": "2024-01-01T00:00:00Z",
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "demo"},
                "ranges": [
                    {"type": "GIT", "repo": "https://git.example/demo", "events": [{"introduced": "abc"}]},
                    {"type": "SEMVER", "events": [{"introduced": "1.0.0-alpha.1"}, {"limit": "3.0.0"}]},
                ],
            }
        ],
    }
    (advisory,) = parse_osv(data, "x.json").advisories
    assert [r.type for r in advisory.ranges] == ["SEMVER"]
    assert advisory.version_range == ">=1.0.0a1,<3.0.0"
    assert affected(advisory, "0.9", "1.0.0a1", "2.9", "3.0.0") == ["1.0.0a1", "2.9"]


def test_events_are_evaluated_in_version_order_not_file_order() -> None:
    events = [{"fixed": "1.5"}, {"introduced": "1.2"}, {"fixed": "1.1"}, {"introduced": "0"}]
    data = {
        "id": "X-4",
        "modified": "2024-01-01T00:00:00Z",
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "demo"},
                "ranges": [{"type": "ECOSYSTEM", "events": events}],
            }
        ],
    }
    (advisory,) = parse_osv(data, "x.json").advisories
    assert advisory.version_range == "<1.1 || >=1.2,<1.5"
    assert affected(advisory, "1.0", "1.1", "1.3", "1.5") == ["1.0", "1.3"]


def test_withdrawn_records_are_kept_but_never_affect() -> None:
    advisory = only("d8s-json", "PYSEC-2022-43078")
    assert advisory.withdrawn == datetime(2024, 11, 22, 4, 37, 3, tzinfo=UTC)
    assert advisory.version_range == "*"
    assert advisory.versions == tuple(Version(v) for v in ("0.1.0", "0.2.0", "0.2.1", "0.3.0"))
    assert affected(advisory, "0.1.0", "0.3.0", "9") == []
    assert record("d8s-json", "PYSEC-2022-43078").withdrawn


def test_unparsable_versions_are_reported_and_the_range_left_out() -> None:
    advisory = only("steam", "PYSEC-2019-125")
    assert advisory.ranges == ()
    assert advisory.problems == (
        "vulns/steam/PYSEC-2019-125.yaml: affected[0].ranges[0].events[1].fixed: '2019-09-12' "
        "is not a PEP 440 version; this range is ignored",
    )
    assert not advisory.affects(Version("1.0"))
    data = {
        "id": "X-5",
        "modified": "2024-01-01T00:00:00Z",
        "affected": [{"package": {"ecosystem": "PyPI", "name": "demo"}, "versions": ["1.0", "a3"]}],
    }
    (listed,) = parse_osv(data, "x.json").advisories
    assert listed.versions == (Version("1.0"),)
    assert listed.problems == ("x.json: affected[0].versions[1]: 'a3' is not a PEP 440 version; ignored",)


def test_yaml_numbers_stay_version_text() -> None:
    # Unquoted, YAML 1.1 reads 1.10 as the float 1.1; an advisory must not read it so.
    text = """
id: X-6
modified: 2024-01-01T00:00:00Z
affected:
- package: {ecosystem: PyPI, name: demo}
  ranges:
  - type: ECOSYSTEM
    events: [{introduced: 0}, {fixed: 1.10}]
"""
    (advisory,) = parse_osv_text(text, "x.yaml").advisories
    assert advisory.version_range == "<1.10"
    assert advisory.affects(Version("1.9"))
    assert advisory.modified == datetime(2024, 1, 1, tzinfo=UTC)


def test_other_ecosystems_are_left_out() -> None:
    data = {
        "id": "X-7",
        "modified": "2024-01-01T00:00:00Z",
        "affected": [
            {"package": {"ecosystem": "npm", "name": "left-pad"}, "versions": ["1.0"]},
            {"package": {"ecosystem": "PyPI", "name": "Demo.Pkg"}, "versions": ["1.0"]},
        ],
    }
    assert [a.package for a in parse_osv(data, "x.json").advisories] == ["demo-pkg"]
    assert parse_osv({**data, "affected": data["affected"][:1]}, "x.json").advisories == ()


def test_json_text_and_round_trip() -> None:
    for path in sorted(DATA.rglob("*.yaml")):
        source = path.relative_to(DATA.parent).as_posix()
        for advisory in parse_osv_text(path.read_text(), source).advisories:
            assert Advisory.from_json(json.loads(json.dumps(advisory.to_json()))) == advisory
    tf = only("tensorflow", "PYSEC-2021-412")
    as_json = json.dumps(
        {
            "id": tf.id,
            "modified": "2021-11-13T00:00:00Z",
            "affected": [
                {
                    "package": {"ecosystem": "PyPI", "name": "tensorflow"},
                    "ranges": [r.to_json() for r in tf.ranges],
                }
            ],
        }
    )
    (parsed,) = parse_osv_text(as_json.encode(), "PYSEC-2021-412.json").advisories
    assert parsed.version_range == tf.version_range


MINIMAL: dict[str, Any] = {
    "id": "X-9",
    "modified": "2024-01-01T00:00:00Z",
    "affected": [
        {
            "package": {"ecosystem": "PyPI", "name": "demo"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.0"}]}],
        }
    ],
}


def broken(change: dict[str, Any] | None = None, **top: Any) -> dict[str, Any]:
    data = json.loads(json.dumps(MINIMAL))
    data.update(top)
    for key, value in (change or {}).items():
        data["affected"][0][key] = value
    return {key: value for key, value in data.items() if value is not None}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "f.yaml: expected an OSV record (a mapping with id, modified, affected)"),
        (broken(id=None), "f.yaml: id: missing"),
        (broken(id=5), "f.yaml: id: expected a non-empty string, got 5"),
        (broken(modified=None), "f.yaml: modified: missing"),
        (
            broken(modified="yesterday"),
            "f.yaml: modified: 'yesterday' is not an RFC 3339 time (like 2024-01-31T12:00:00Z)",
        ),
        (broken(withdrawn=3), "f.yaml: withdrawn: expected an RFC 3339 time string, got 3"),
        (broken(aliases="CVE-1"), "f.yaml: aliases: expected a list of strings"),
        (broken(affected={}), "f.yaml: affected: expected a list of affected packages"),
        (
            broken({"package": None}),
            "f.yaml: affected[0].package: missing, or not a mapping with name and ecosystem",
        ),
        (broken({"package": {"ecosystem": "PyPI"}}), "f.yaml: affected[0].package.name: missing"),
        (broken({"package": {"name": "demo"}}), "f.yaml: affected[0].package.ecosystem: missing"),
        (broken({"versions": "1.0"}), "f.yaml: affected[0].versions: expected a list of strings"),
        (
            broken({"ranges": [{"type": "NPM", "events": [{"introduced": "0"}]}]}),
            "f.yaml: affected[0].ranges[0].type: 'NPM' is not one of ECOSYSTEM, SEMVER, GIT",
        ),
        (
            broken({"ranges": [{"type": "ECOSYSTEM", "events": []}]}),
            "f.yaml: affected[0].ranges[0].events: expected a non-empty list of events",
        ),
        (
            broken({"ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0", "fixed": "1"}]}]}),
            "f.yaml: affected[0].ranges[0].events[0]: expected one of introduced, fixed, last_affected, "
            "limit with a version",
        ),
        (
            broken({"ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"patched": "1"}]}]}),
            "f.yaml: affected[0].ranges[0].events[1].patched: unknown event; expected one of introduced, "
            "fixed, last_affected, limit",
        ),
        (
            broken({"ranges": [{"type": "ECOSYSTEM", "events": [{"fixed": "1.0"}]}]}),
            "f.yaml: affected[0].ranges[0].events: no introduced event",
        ),
        (
            broken({"ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": None}]}]}),
            "f.yaml: affected[0].ranges[0].events[0].introduced: expected a version string",
        ),
        (broken(references=[{"type": "WEB"}]), "f.yaml: references[0].url: missing"),
    ],
)
def test_invalid_records_name_the_file_and_key(data: Any, message: str) -> None:
    with pytest.raises(InvalidAdvisory) as caught:
        parse_osv(data, "f.yaml")
    assert str(caught.value) == message
    assert caught.value.source == "f.yaml"


def test_invalid_text() -> None:
    with pytest.raises(InvalidAdvisory, match=r"^f\.yaml: invalid YAML: line 2: "):
        parse_osv_text("id: X\n  bad: [\n", "f.yaml")
    with pytest.raises(InvalidAdvisory, match=r"^f\.json: invalid JSON: "):
        parse_osv_text("{", "f.json")
    with pytest.raises(InvalidAdvisory, match=r"^f\.json: not UTF-8 text"):
        parse_osv_text(b"\xff\xfe", "f.json")
