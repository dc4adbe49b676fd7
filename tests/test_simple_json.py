"""The PEP 691 JSON parser, its InvalidPage reasons, and a cross-check against the HTML parser."""

from __future__ import annotations

import json
import pickle
from typing import Any

import pytest

from index_proxy.simple.errors import InvalidPage
from index_proxy.simple.html import parse_project_page_html
from index_proxy.simple.json import parse_project_list_json, parse_project_page_json
from index_proxy.simple.model import DistributionFile, ProjectList, ProjectPage

SHA_A = "a" * 63 + "1"
SHA_B = "b" * 63 + "2"
SHA_M = "c" * 63 + "3"

URL = "https://pypi.example/simple/pepy/"

# Shaped like PyPI's answer today: private "_" keys, PEP 708 leftovers, PEP 740 provenance, both metadata
# keys, nulls in optional fields.
PYPI_PAGE: dict[str, Any] = {
    "meta": {"_last-serial": 26_500_000, "api-version": "1.4"},
    "name": "pepy",
    "alternate-locations": [],
    "project-status": {"status": "archived"},
    "versions": ["0.1.0", "1.0.0"],
    "files": [
        {
            "core-metadata": False,
            "data-dist-info-metadata": False,
            "filename": "pepy-0.1.0.tar.gz",
            "hashes": {"sha256": SHA_A},
            "provenance": None,
            "requires-python": None,
            "size": 2048,
            "upload-time": "2019-03-01T10:00:00.000000Z",
            "url": "https://files.example/packages/aa/bb/pepy-0.1.0.tar.gz",
            "yanked": False,
        },
        {
            "core-metadata": {"sha256": SHA_M},
            "data-dist-info-metadata": {"sha256": SHA_M},
            "filename": "pepy-1.0.0-py3-none-any.whl",
            "hashes": {"sha256": SHA_B, "blake2b_256": "00ff"},
            "provenance": "https://pypi.example/integrity/pepy/1.0.0/pepy-1.0.0-py3-none-any.whl/provenance",
            "requires-python": ">=3.8",
            "size": 48213,
            "upload-time": "2026-05-01T09:30:00.123456Z",
            "url": "https://files.example/packages/cc/dd/pepy-1.0.0-py3-none-any.whl",
            "yanked": "broken build",
            "gpg-sig": False,
        },
    ],
}
PYPI_EXPECTED = ProjectPage(
    name="pepy",
    files=(
        DistributionFile(
            filename="pepy-0.1.0.tar.gz",
            url="https://files.example/packages/aa/bb/pepy-0.1.0.tar.gz",
            hashes={"sha256": SHA_A},
            core_metadata=False,
            size=2048,
            upload_time="2019-03-01T10:00:00.000000Z",
        ),
        DistributionFile(
            filename="pepy-1.0.0-py3-none-any.whl",
            url="https://files.example/packages/cc/dd/pepy-1.0.0-py3-none-any.whl",
            hashes={"sha256": SHA_B, "blake2b_256": "00ff"},
            requires_python=">=3.8",
            yanked="broken build",
            core_metadata={"sha256": SHA_M},
            size=48213,
            upload_time="2026-05-01T09:30:00.123456Z",
            gpg_sig=False,
        ),
    ),
    versions=("0.1.0", "1.0.0"),
    api_version="1.4",
    project_status="archived",
)

# The minimal 1.1 page from the spec notes, with relative URLs as devpi-style servers send them.
RELATIVE_URL = "https://devpi.example/root/pypi/+simple/alpha-lib/"
RELATIVE_PAGE: dict[str, Any] = {
    "meta": {"api-version": "1.1"},
    "name": "alpha-lib",
    "versions": ["2.0.0", "3.0.0"],
    "files": [
        {
            "filename": "alpha_lib-2.0.0-py3-none-any.whl",
            "url": "../../+f/ab/cd/alpha_lib-2.0.0-py3-none-any.whl",
            "hashes": {"SHA256": SHA_A.upper()},
            "requires-python": ">=3.9",
            "core-metadata": {"sha256": SHA_M},
            "size": 48213,
            "upload-time": "2026-05-01T09:30:00.123456Z",
        },
        {
            "filename": "alpha_lib-2.0.0.tar.gz",
            "url": "/files/alpha_lib-2.0.0.tar.gz",
            "hashes": {},
            "size": 0,
        },
        {
            "filename": "alpha_lib-2.0.0.zip",
            "url": "alpha_lib-2.0.0.zip",
            "hashes": {},
            "size": 10,
            "x-unknown-key": {"anything": ["goes"]},
        },
    ],
}
RELATIVE_EXPECTED = ProjectPage(
    name="alpha-lib",
    files=(
        DistributionFile(
            filename="alpha_lib-2.0.0-py3-none-any.whl",
            url="https://devpi.example/root/pypi/+f/ab/cd/alpha_lib-2.0.0-py3-none-any.whl",
            hashes={"sha256": SHA_A},
            requires_python=">=3.9",
            core_metadata={"sha256": SHA_M},
            size=48213,
            upload_time="2026-05-01T09:30:00.123456Z",
        ),
        DistributionFile(
            filename="alpha_lib-2.0.0.tar.gz",
            url="https://devpi.example/files/alpha_lib-2.0.0.tar.gz",
            size=0,
        ),
        DistributionFile(
            filename="alpha_lib-2.0.0.zip",
            url="https://devpi.example/root/pypi/+simple/alpha-lib/alpha_lib-2.0.0.zip",
            size=10,
        ),
    ),
    versions=("2.0.0", "3.0.0"),
    api_version="1.1",
)

MINIMAL_10_PAGE: dict[str, Any] = {
    "meta": {"api-version": "1.0"},
    "name": "tiny",
    "files": [{"filename": "tiny-1.0.tar.gz", "url": "tiny-1.0.tar.gz", "hashes": {}}],
}
MINIMAL_10_EXPECTED = ProjectPage(
    name="tiny",
    files=(DistributionFile(filename="tiny-1.0.tar.gz", url=URL + "tiny-1.0.tar.gz"),),
)


@pytest.mark.parametrize(
    ("document", "url", "expected"),
    [
        pytest.param(PYPI_PAGE, URL, PYPI_EXPECTED, id="pypi-1.4"),
        pytest.param(RELATIVE_PAGE, RELATIVE_URL, RELATIVE_EXPECTED, id="relative-1.1"),
        pytest.param(MINIMAL_10_PAGE, URL, MINIMAL_10_EXPECTED, id="minimal-1.0"),
        pytest.param(
            {"meta": {"api-version": "1.0"}, "name": "empty", "files": []},
            URL,
            ProjectPage(name="empty"),
            id="no-files",
        ),
        pytest.param({"name": "old", "files": []}, URL, ProjectPage(name="old"), id="no-meta-means-1.0"),
        pytest.param(
            {"meta": {"_last-serial": 1}, "name": "old", "files": []},
            URL,
            ProjectPage(name="old"),
            id="no-api-version-means-1.0",
        ),
        pytest.param(
            {"meta": {"api-version": "1.7"}, "name": "future", "files": [], "versions": []},
            URL,
            ProjectPage(name="future", api_version="1.7"),
            id="newer-minor",
        ),
    ],
)
def test_project_page(document: dict[str, Any], url: str, expected: ProjectPage) -> None:
    assert parse_project_page_json(json.dumps(document).encode(), url) == expected


def _file_with(**fields: Any) -> DistributionFile:
    entry = {"filename": "pkg-1.0.tar.gz", "url": "pkg-1.0.tar.gz", "hashes": {}}
    entry.update({key.replace("_", "-"): value for key, value in fields.items()})
    document = {"meta": {"api-version": "1.1"}, "name": "pkg", "files": [entry], "versions": ["1.0"]}
    return parse_project_page_json(json.dumps(document).encode(), URL).files[0]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param({}, None, id="absent-unknown"),
        pytest.param({"core_metadata": True}, True, id="true"),
        pytest.param({"core_metadata": False}, False, id="false"),
        pytest.param({"core_metadata": None}, None, id="null"),
        pytest.param({"core_metadata": {"sha256": SHA_M}}, {"sha256": SHA_M}, id="hashes"),
        pytest.param({"core_metadata": {}}, {}, id="empty-hashes"),
        pytest.param({"dist_info_metadata": {"sha256": SHA_M}}, {"sha256": SHA_M}, id="legacy-fallback"),
        pytest.param({"dist_info_metadata": True}, True, id="legacy-true"),
        pytest.param(
            {"core_metadata": False, "dist_info_metadata": {"sha256": SHA_M}}, False, id="core-false-wins"
        ),
        pytest.param(
            {"core_metadata": {"sha256": SHA_M}, "dist_info_metadata": "garbage"},
            {"sha256": SHA_M},
            id="unused-legacy-not-validated",
        ),
        pytest.param(
            {"core_metadata": None, "dist_info_metadata": True}, True, id="null-core-falls-back-to-legacy"
        ),
    ],
)
def test_core_metadata(fields: dict[str, Any], expected: object) -> None:
    assert _file_with(**fields).core_metadata == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(None, False, id="null"),
        pytest.param(False, False, id="false"),
        pytest.param(True, True, id="true"),
        pytest.param("CVE-2026-0001", "CVE-2026-0001", id="reason"),
        pytest.param("", True, id="empty-reason-still-yanked"),
        pytest.param(" ", True, id="blank-reason-still-yanked"),
    ],
)
def test_yanked(value: object, expected: object) -> None:
    assert _file_with(yanked=value).yanked == expected


def test_yanked_absent() -> None:
    assert _file_with().yanked is False


@pytest.mark.parametrize(
    ("fields", "attribute", "expected"),
    [
        pytest.param(
            {"requires_python": "<4,>=3.8"}, "requires_python", "<4,>=3.8", id="requires-python-raw"
        ),
        pytest.param({"requires_python": ""}, "requires_python", None, id="requires-python-empty"),
        pytest.param({"requires_python": None}, "requires_python", None, id="requires-python-null"),
        pytest.param({"gpg_sig": True}, "gpg_sig", True, id="gpg-sig"),
        pytest.param({"size": None}, "size", None, id="size-null"),
        pytest.param({}, "size", None, id="size-absent-tolerated"),
        pytest.param({"upload_time": None}, "upload_time", None, id="upload-time-null"),
        pytest.param({"hashes": {"MD5": "ABCD"}}, "hashes", {"md5": "abcd"}, id="hashes-lowercased"),
        pytest.param(
            {"url": "https://cdn.example/x.tar.gz"}, "url", "https://cdn.example/x.tar.gz", id="abs"
        ),
        pytest.param(
            {"url": "//cdn.example/x.tar.gz"}, "url", "https://cdn.example/x.tar.gz", id="scheme-rel"
        ),
        pytest.param({"provenance": None, "_private": 1}, "filename", "pkg-1.0.tar.gz", id="unknown-keys"),
    ],
)
def test_file_fields(fields: dict[str, Any], attribute: str, expected: object) -> None:
    assert getattr(_file_with(**fields), attribute) == expected


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        pytest.param({}, None, id="absent"),
        pytest.param({"project-status": None}, None, id="null"),
        pytest.param({"project-status": {}}, None, id="empty-object"),
        pytest.param(
            {"project-status": {"status": "quarantined", "reason": "malware"}}, "quarantined", id="pep"
        ),
        pytest.param({"project-status": {"state": "deprecated"}}, "deprecated", id="pep-792-prose-key"),
        pytest.param(
            {"project-status": {"status": "active", "state": "archived"}}, "active", id="status-beats-state"
        ),
        pytest.param(
            {"meta": {"api-version": "1.4", "project-status": {"status": "archived"}}},
            "archived",
            id="spec-example-under-meta",
        ),
    ],
)
def test_project_status(extra: dict[str, Any], expected: str | None) -> None:
    document = {"meta": {"api-version": "1.4"}, "name": "p", "files": [], "versions": [], **extra}
    assert parse_project_page_json(json.dumps(document).encode(), URL).project_status == expected


def _page(**overrides: Any) -> bytes:
    """A valid 1.1 page with two files, with top-level keys replaced (None deletes)."""
    document: dict[str, Any] = {
        "meta": {"api-version": "1.1"},
        "name": "pkg",
        "versions": ["1.0"],
        "files": [
            {"filename": "pkg-1.0.tar.gz", "url": "pkg-1.0.tar.gz", "hashes": {}, "size": 1},
            {"filename": "pkg-1.0-py3-none-any.whl", "url": "pkg.whl", "hashes": {}, "size": 1},
        ],
    }
    for key, value in overrides.items():
        key = key.replace("_", "-")
        if value is None:
            del document[key]
        else:
            document[key] = value
    return json.dumps(document).encode()


def _second_file(**fields: Any) -> bytes:
    """A valid page whose files[1] has these keys replaced (None deletes; JSON null needs `NULL`)."""
    entry: dict[str, Any] = {"filename": "pkg-1.0.tar.gz", "url": "pkg-1.0.tar.gz", "hashes": {}, "size": 1}
    for key, value in fields.items():
        key = key.replace("_", "-")
        if value is None:
            del entry[key]
        else:
            entry[key] = None if value is NULL else value
    good = {"filename": "ok.tar.gz", "url": "ok.tar.gz", "hashes": {}}
    return _page(files=[good, entry])


NULL = object()


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        pytest.param(b"[]", "top level: expected an object, got list", id="top-level-list"),
        pytest.param(b"null", "top level: expected an object, got null", id="top-level-null"),
        pytest.param(_page(meta=[]), "meta: expected an object, got list", id="meta-list"),
        pytest.param(
            _page(meta={"api-version": 1.1}),
            "meta.api-version: expected a string, got number",
            id="api-version-number",
        ),
        pytest.param(
            _page(meta={"api-version": "2.0"}),
            "unsupported API version '2.0' (major version must be 1)",
            id="api-version-2",
        ),
        pytest.param(
            _page(meta={"api-version": "v1"}), "malformed API version 'v1'", id="api-version-malformed"
        ),
        pytest.param(_page(name=None), "name: missing", id="name-missing"),
        pytest.param(_page(name=["pkg"]), "name: expected a string, got list", id="name-list"),
        pytest.param(_page(files=None), "files: missing", id="files-missing"),
        pytest.param(_page(files={}), "files: expected a list, got object", id="files-object"),
        pytest.param(_page(files=[{}, "x"]), "files[0].filename: missing", id="files-0-empty"),
        pytest.param(
            _page(files=[{"filename": "a", "url": "a", "hashes": {}}, "x"]),
            "files[1]: expected an object, got string",
            id="file-string",
        ),
        pytest.param(
            _page(versions={"1.0": True}), "versions: expected a list, got object", id="versions-object"
        ),
        pytest.param(
            _page(versions=["1.0", 2]), "versions[1]: expected a string, got integer", id="versions-int"
        ),
        pytest.param(
            _page(project_status="archived"),
            "project-status: expected an object, got string",
            id="project-status-string",
        ),
        pytest.param(
            _page(project_status={"status": 1}),
            "project-status.status: expected a string, got integer",
            id="project-status-status-int",
        ),
        pytest.param(_second_file(filename=None), "files[1].filename: missing", id="filename-missing"),
        pytest.param(
            _second_file(filename=1), "files[1].filename: expected a string, got integer", id="filename-int"
        ),
        pytest.param(_second_file(url=None), "files[1].url: missing", id="url-missing"),
        pytest.param(_second_file(url=NULL), "files[1].url: expected a string, got null", id="url-null"),
        pytest.param(_second_file(url=" "), "files[1].url: empty", id="url-empty"),
        pytest.param(_second_file(hashes=None), "files[1].hashes: missing", id="hashes-missing"),
        pytest.param(
            _second_file(hashes=[]), "files[1].hashes: expected an object, got list", id="hashes-list"
        ),
        pytest.param(
            _second_file(hashes={"sha256": 5}),
            "files[1].hashes.sha256: expected a string, got integer",
            id="hash-int",
        ),
        pytest.param(
            _second_file(size="1"), "files[1].size: expected an integer, got string", id="size-string"
        ),
        pytest.param(
            _second_file(size=1.5), "files[1].size: expected an integer, got number", id="size-float"
        ),
        pytest.param(
            _second_file(size=True), "files[1].size: expected an integer, got boolean", id="size-bool"
        ),
        pytest.param(
            _second_file(size=-1),
            "files[1].size: expected a non-negative integer, got -1",
            id="size-negative",
        ),
        pytest.param(
            _second_file(yanked=1),
            "files[1].yanked: expected a boolean or a string, got integer",
            id="yanked-int",
        ),
        pytest.param(
            _second_file(core_metadata="sha256=ab"),
            "files[1].core-metadata: expected a boolean or an object, got string",
            id="core-metadata-str",
        ),
        pytest.param(
            _second_file(core_metadata={"sha256": None}),
            "files[1].core-metadata.sha256: expected a string, got null",
            id="core-metadata-hash-null",
        ),
        pytest.param(
            _second_file(dist_info_metadata=[]),
            "files[1].dist-info-metadata: expected a boolean or an object, got list",
            id="dist-info-metadata-list",
        ),
        pytest.param(
            _second_file(requires_python=3),
            "files[1].requires-python: expected a string, got integer",
            id="requires-python-int",
        ),
        pytest.param(
            _second_file(upload_time=0),
            "files[1].upload-time: expected a string, got integer",
            id="upload-time-int",
        ),
        pytest.param(
            _second_file(gpg_sig="true"),
            "files[1].gpg-sig: expected a boolean, got string",
            id="gpg-sig-string",
        ),
    ],
)
def test_invalid_project_page(content: bytes, reason: str) -> None:
    with pytest.raises(InvalidPage) as raised:
        parse_project_page_json(content, URL)
    assert raised.value.url == URL
    assert raised.value.reason == reason
    assert str(raised.value) == f"{URL}: {reason}"


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"", id="empty-body"),
        pytest.param(b"<html></html>", id="html-body"),
        pytest.param(b'{"name": "pkg",', id="truncated"),
        pytest.param(b"\xff\xfe\xfd", id="undecodable"),
    ],
)
def test_invalid_json(content: bytes) -> None:
    with pytest.raises(InvalidPage) as raised:
        parse_project_page_json(content, URL)
    # The rest of the reason is the decoder's own message, which varies between Python versions.
    assert raised.value.reason.startswith("invalid JSON: ")
    with pytest.raises(InvalidPage, match="invalid JSON: "):
        parse_project_list_json(content, LIST_URL)


def test_too_deeply_nested_json() -> None:
    content = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(InvalidPage) as raised:
        parse_project_page_json(content, URL)
    assert raised.value.reason == "invalid JSON: nested too deeply"


def test_reason_names_the_file_index() -> None:
    files = [{"filename": f"f{i}", "url": f"f{i}", "hashes": {}} for i in range(5)]
    files[3]["hashes"] = []
    with pytest.raises(InvalidPage, match=r"files\[3\]\.hashes: expected an object, got list$"):
        parse_project_page_json(_page(files=files), URL)


@pytest.mark.parametrize(
    ("encoding"),
    ["utf-8", "utf-8-sig", "utf-16", "utf-32"],
)
def test_unicode_encodings(encoding: str) -> None:
    document = {"meta": {"api-version": "1.0"}, "name": "café", "files": []}
    content = json.dumps(document, ensure_ascii=False).encode(encoding)
    assert parse_project_page_json(content, URL).name == "café"


LIST_URL = "https://pypi.example/simple/"


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        pytest.param(
            {
                "meta": {"_last-serial": 26_500_000, "api-version": "1.4"},
                "projects": [
                    {"_last-serial": 1, "name": "alpha-lib"},
                    {"_last-serial": 2, "name": "Beta_Tool"},
                    {"name": "zope.interface"},
                ],
            },
            ProjectList(names=("alpha-lib", "Beta_Tool", "zope.interface"), api_version="1.4"),
            id="pypi",
        ),
        pytest.param({"meta": {"api-version": "1.0"}, "projects": []}, ProjectList(), id="empty"),
        pytest.param({"projects": [{"name": "x"}]}, ProjectList(names=("x",)), id="no-meta"),
    ],
)
def test_project_list(document: dict[str, Any], expected: ProjectList) -> None:
    assert parse_project_list_json(json.dumps(document).encode(), LIST_URL) == expected


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        pytest.param([], "top level: expected an object, got list", id="top-level-list"),
        pytest.param(
            {"meta": {"api-version": "2.0"}, "projects": []},
            "unsupported API version '2.0' (major version must be 1)",
            id="api-version-2",
        ),
        pytest.param({"meta": {"api-version": "1.0"}}, "projects: missing", id="projects-missing"),
        pytest.param({"projects": {"a": {}}}, "projects: expected a list, got object", id="projects-object"),
        pytest.param(
            {"projects": [{"name": "a"}, "b"]},
            "projects[1]: expected an object, got string",
            id="project-string",
        ),
        pytest.param({"projects": [{"name": "a"}, {}]}, "projects[1].name: missing", id="name-missing"),
        pytest.param(
            {"projects": [{"name": None}]}, "projects[0].name: expected a string, got null", id="name-null"
        ),
    ],
)
def test_invalid_project_list(document: object, reason: str) -> None:
    with pytest.raises(InvalidPage) as raised:
        parse_project_list_json(json.dumps(document).encode(), LIST_URL)
    assert (raised.value.url, raised.value.reason) == (LIST_URL, reason)


def test_invalid_page_is_a_picklable_value_error() -> None:
    error = InvalidPage("https://x.example/simple/p/", "files: missing")
    assert isinstance(error, ValueError)
    assert str(error) == "https://x.example/simple/p/: files: missing"
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.url, copy.reason, str(copy)) == (error.url, error.reason, str(error))


# The same project written once per format by hand: both parsers must agree on everything HTML can carry.
CROSS_URL = "https://mirror.example/root/simple/alpha-lib/"
CROSS_JSON = f"""{{
  "meta": {{"api-version": "1.0"}},
  "name": "alpha-lib",
  "files": [
    {{"filename": "alpha_lib-1.0.tar.gz",
      "url": "../../packages/alpha_lib-1.0.tar.gz",
      "hashes": {{"sha256": "{SHA_A}"}}}},
    {{"filename": "alpha_lib-1.1-py3-none-any.whl",
      "url": "https://files.example/alpha_lib-1.1-py3-none-any.whl",
      "hashes": {{"sha256": "{SHA_B}", "md5": "0123456789abcdef"}},
      "requires-python": ">=3.8, <4",
      "core-metadata": {{"sha256": "{SHA_M}"}},
      "gpg-sig": true}},
    {{"filename": "alpha_lib-1.2.tar.gz",
      "url": "/packages/alpha_lib-1.2.tar.gz",
      "hashes": {{}},
      "yanked": "security issue: use >=1.3 & <2",
      "core-metadata": true,
      "gpg-sig": false}},
    {{"filename": "alpha_lib-1.3.tar.gz",
      "url": "alpha_lib-1.3.tar.gz",
      "hashes": {{"sha256": "{SHA_A}"}},
      "yanked": true,
      "core-metadata": false}}
  ]
}}"""
CROSS_HTML = f"""<!DOCTYPE html>
<html><head><meta name="pypi:repository-version" content="1.0"><title>Links for alpha-lib</title></head>
<body><h1>Links for alpha-lib</h1>
<a href="../../packages/alpha_lib-1.0.tar.gz#sha256={SHA_A}">alpha_lib-1.0.tar.gz</a><br/>
<a href="https://files.example/alpha_lib-1.1-py3-none-any.whl#sha256={SHA_B}&amp;md5=0123456789abcdef"
   data-requires-python="&gt;=3.8, &lt;4" data-core-metadata="sha256={SHA_M}"
   data-gpg-sig="true">alpha_lib-1.1-py3-none-any.whl</a><br/>
<a href="/packages/alpha_lib-1.2.tar.gz" data-yanked="security issue: use &gt;=1.3 &amp; &lt;2"
   data-core-metadata="true" data-gpg-sig="false">alpha_lib-1.2.tar.gz</a><br/>
<a href="alpha_lib-1.3.tar.gz#sha256={SHA_A}" data-yanked=""
   data-core-metadata="false">alpha_lib-1.3.tar.gz</a>
</body></html>
"""


def test_json_and_html_agree() -> None:
    from_json = parse_project_page_json(CROSS_JSON.encode(), CROSS_URL)
    from_html = parse_project_page_html(CROSS_HTML.encode(), CROSS_URL)
    assert from_json == from_html
    # Guard against both parsers agreeing on nothing.
    assert len(from_json.files) == 4
    assert from_json.files[0].url == "https://mirror.example/root/packages/alpha_lib-1.0.tar.gz"
    assert from_json.files[2].yanked == "security issue: use >=1.3 & <2"
