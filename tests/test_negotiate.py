"""Content negotiation for clients, and Content-Type dispatch for upstream answers."""

from __future__ import annotations

import json

import pytest

from index_proxy.simple import negotiate as negotiate_module
from index_proxy.simple.errors import InvalidPage
from index_proxy.simple.model import ProjectList, ProjectPage
from index_proxy.simple.negotiate import (
    HTML_V1,
    JSON_V1,
    TEXT_HTML,
    UPSTREAM_ACCEPT,
    Negotiated,
    PageFormat,
    negotiate,
    parse_response,
)

AS_JSON = Negotiated(PageFormat.JSON, JSON_V1)
AS_HTML_V1 = Negotiated(PageFormat.HTML, HTML_V1)
AS_TEXT_HTML = Negotiated(PageFormat.HTML, TEXT_HTML)

PIP = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"
UV = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
LATEST_JSON = "application/vnd.pypi.simple.latest+json"
LATEST_HTML = "application/vnd.pypi.simple.latest+html"


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    # Each case must be decided by the parser, not by an earlier case's cached answer.
    negotiate_module._cache.clear()


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        # Real clients.
        pytest.param(PIP, AS_JSON, id="pip"),
        pytest.param(UV, AS_JSON, id="uv"),
        pytest.param(BROWSER, AS_TEXT_HTML, id="browser"),
        pytest.param(UPSTREAM_ACCEPT, AS_JSON, id="our-own-upstream-accept"),
        pytest.param("*/*", AS_JSON, id="curl"),
        pytest.param("text/html", AS_TEXT_HTML, id="old-pip"),
        # Missing or empty header.
        pytest.param(None, AS_TEXT_HTML, id="missing"),
        pytest.param("", AS_TEXT_HTML, id="empty"),
        pytest.param("  ", AS_TEXT_HTML, id="blank"),
        # Single types, latest aliases answered with the concrete type.
        pytest.param(JSON_V1, AS_JSON, id="v1-json"),
        pytest.param(HTML_V1, AS_HTML_V1, id="v1-html"),
        pytest.param(LATEST_JSON, AS_JSON, id="latest-json"),
        pytest.param(LATEST_HTML, AS_HTML_V1, id="latest-html"),
        pytest.param("APPLICATION/VND.PYPI.SIMPLE.V1+JSON", AS_JSON, id="case-insensitive"),
        pytest.param(f"  {JSON_V1} ; q=1 ", AS_JSON, id="whitespace"),
        # q-values decide; list order does not.
        pytest.param(f"text/html;q=0.5, {JSON_V1};q=0.4", AS_TEXT_HTML, id="higher-q-wins"),
        pytest.param(f"text/html, {JSON_V1};q=0.999", AS_TEXT_HTML, id="three-decimals"),
        pytest.param(f"text/html;q=0.2, {HTML_V1};q=0.3", AS_HTML_V1, id="v1-html-over-text-html-by-q"),
        pytest.param(f"text/html, {HTML_V1}, {JSON_V1}", AS_JSON, id="tie-prefers-json"),
        pytest.param(f"text/html, {HTML_V1}", AS_HTML_V1, id="tie-prefers-v1-html"),
        pytest.param(f"{JSON_V1};q=1.000, text/html;q=1", AS_JSON, id="q-1.000"),
        pytest.param(f"{JSON_V1};Q=0.5, text/html;q=0.4", AS_JSON, id="uppercase-q"),
        # q=0 excludes, including what a wildcard would have allowed.
        pytest.param(f"{JSON_V1};q=0, {HTML_V1};q=0.1", AS_HTML_V1, id="json-excluded"),
        pytest.param(f"*/*, {JSON_V1};q=0", AS_TEXT_HTML, id="wildcard-minus-json"),
        pytest.param(f"*/*, {JSON_V1};q=0, text/html;q=0", AS_HTML_V1, id="wildcard-minus-json-and-text"),
        pytest.param(f"*/*;q=0.1, {JSON_V1};q=0.000", AS_TEXT_HTML, id="q-0.000"),
        pytest.param(f"{JSON_V1};q=0, {LATEST_JSON}", AS_JSON, id="latest-is-as-specific-as-v1"),
        # Wildcards.
        pytest.param("application/*", AS_JSON, id="application-wildcard"),
        pytest.param(f"application/*, {JSON_V1};q=0", AS_HTML_V1, id="application-wildcard-minus-json"),
        pytest.param("text/*", AS_TEXT_HTML, id="text-wildcard"),
        pytest.param(f"*/*;q=0.5, {HTML_V1}", AS_HTML_V1, id="specific-beats-wildcard-q"),
        pytest.param(f"*/*;q=0.5, {HTML_V1};q=0.5", AS_JSON, id="wildcard-tie-prefers-json"),
        pytest.param("application/json, */*;q=0.1", AS_JSON, id="generic-json-is-not-ours"),
        # Malformed entries are dropped, the rest still counts.
        pytest.param(f"{JSON_V1};q=abc, text/html;q=0.1", AS_TEXT_HTML, id="malformed-q"),
        pytest.param(f"{JSON_V1};q=1.5, text/html;q=0.1", AS_TEXT_HTML, id="q-above-1"),
        pytest.param(f"{JSON_V1};q=0.1234, text/html;q=0.1", AS_TEXT_HTML, id="q-four-decimals"),
        pytest.param(f"{JSON_V1};q=-1, text/html;q=0.1", AS_TEXT_HTML, id="q-negative"),
        pytest.param(f'{JSON_V1};q="0.5", text/html;q=0.1', AS_TEXT_HTML, id="q-quoted"),
        pytest.param(f"{JSON_V1};q=, text/html;q=0.1", AS_TEXT_HTML, id="q-empty"),
        pytest.param(f"garbage, ,;q=1, {HTML_V1}", AS_HTML_V1, id="garbage-ranges"),
        pytest.param(f"{JSON_V1};charset=utf-8;q=0.5;ext=1, text/html;q=0.4", AS_JSON, id="extra-params"),
        pytest.param(f"text/html;level=1;q=0.9, {JSON_V1};q=0.8", AS_TEXT_HTML, id="params-before-q"),
    ],
)
def test_negotiate(accept: str | None, expected: Negotiated) -> None:
    assert negotiate(accept) == expected


@pytest.mark.parametrize(
    "accept",
    [
        pytest.param("image/png", id="unrelated"),
        pytest.param("application/json", id="generic-json"),
        pytest.param("application/vnd.pypi.simple.v2+json", id="future-major"),
        pytest.param(f"{JSON_V1};q=0", id="only-excluded"),
        pytest.param(f"{JSON_V1};q=0, {HTML_V1};q=0, text/html;q=0", id="all-excluded"),
        pytest.param("*/*;q=0", id="wildcard-excluded"),
        pytest.param(f"{JSON_V1};q=2", id="only-malformed"),
        pytest.param("application/xml, text/plain", id="browserish-without-html"),
        pytest.param(",", id="separators-only"),
    ],
)
def test_not_acceptable(accept: str) -> None:
    assert negotiate(accept) is None


@pytest.mark.parametrize(
    ("format_param", "accept", "expected"),
    [
        pytest.param(JSON_V1, BROWSER, AS_JSON, id="json-over-browser"),
        pytest.param(LATEST_JSON, None, AS_JSON, id="latest-json"),
        pytest.param(HTML_V1, PIP, AS_HTML_V1, id="v1-html-over-pip"),
        pytest.param(LATEST_HTML, PIP, AS_HTML_V1, id="latest-html"),
        pytest.param(TEXT_HTML, PIP, AS_TEXT_HTML, id="text-html-over-pip"),
        pytest.param(f" {JSON_V1.upper()} ", None, AS_JSON, id="case-and-space"),
        pytest.param(JSON_V1, "image/png", AS_JSON, id="overrides-unacceptable-accept"),
        pytest.param("", PIP, AS_JSON, id="empty-means-absent"),
        pytest.param(None, BROWSER, AS_TEXT_HTML, id="none-means-absent"),
        pytest.param("*/*", PIP, None, id="no-wildcards"),
        pytest.param("application/*", PIP, None, id="no-type-wildcards"),
        pytest.param(f"{JSON_V1};q=0.5", PIP, None, id="no-parameters"),
        pytest.param("json", PIP, None, id="short-name"),
        pytest.param("application/json", PIP, None, id="generic-json"),
        pytest.param("application/vnd.pypi.simple.v2+json", PIP, None, id="future-major"),
    ],
)
def test_format_param(format_param: str | None, accept: str | None, expected: Negotiated | None) -> None:
    assert negotiate(accept, format_param) == expected


def test_answers_are_shared_and_frozen() -> None:
    first = negotiate(PIP)
    assert first is negotiate(PIP)
    assert first is negotiate(UV)
    with pytest.raises(AttributeError):
        first.content_type = TEXT_HTML  # type: ignore[misc,union-attr]


def test_cache_remembers_and_stays_bounded() -> None:
    cache = negotiate_module._cache
    assert negotiate(PIP, None) == AS_JSON
    assert negotiate("image/png") is None
    assert cache[(PIP, None)] == AS_JSON
    assert ("image/png", None) in cache
    for index in range(1000):
        negotiate(f"text/html;q=0.{index % 1000:03d}, x/y{index}")
        assert len(cache) <= 256
    assert negotiate(PIP) == AS_JSON


def test_long_headers_are_not_cached() -> None:
    accept = ", ".join(f"x/y{index}" for index in range(500)) + ", text/html"
    assert negotiate(accept) == AS_TEXT_HTML
    assert (accept, None) not in negotiate_module._cache


PAGE_URL = "https://up.example/simple/pkg/"
LIST_URL = "https://up.example/simple/"
JSON_PAGE = json.dumps(
    {
        "meta": {"api-version": "1.1"},
        "name": "pkg",
        "versions": ["1.0"],
        "files": [{"filename": "pkg-1.0.tar.gz", "url": "pkg-1.0.tar.gz", "hashes": {}, "size": 3}],
    }
).encode()
JSON_LIST = b'{"meta": {"api-version": "1.0"}, "projects": [{"name": "pkg"}]}'
HTML_PAGE = b'<meta name="pypi:repository-version" content="1.0"><a href="pkg-1.0.tar.gz">pkg-1.0.tar.gz</a>'
HTML_LIST = b'<a href="pkg/">pkg</a>'


@pytest.mark.parametrize(
    ("content_type", "content", "size"),
    [
        pytest.param(JSON_V1, JSON_PAGE, 3, id="v1-json"),
        pytest.param(f"{JSON_V1}; charset=utf-8", JSON_PAGE, 3, id="v1-json-charset"),
        pytest.param("Application/Vnd.PyPI.Simple.V1+JSON", JSON_PAGE, 3, id="v1-json-case"),
        pytest.param(LATEST_JSON, JSON_PAGE, 3, id="latest-json-tolerated"),
        pytest.param("application/json", JSON_PAGE, 3, id="generic-json"),
        pytest.param(HTML_V1, HTML_PAGE, None, id="v1-html"),
        pytest.param("text/html; charset=UTF-8", HTML_PAGE, None, id="text-html"),
        pytest.param("application/xhtml+xml", HTML_PAGE, None, id="xhtml"),
        pytest.param("", HTML_PAGE, None, id="missing-empty"),
        pytest.param(None, HTML_PAGE, None, id="missing-none"),
    ],
)
def test_parse_response_project(content_type: str | None, content: bytes, size: int | None) -> None:
    page = parse_response(content, content_type, PAGE_URL, project=True)
    assert isinstance(page, ProjectPage)
    assert page.name == "pkg"
    assert [(file.url, file.size) for file in page.files] == [(PAGE_URL + "pkg-1.0.tar.gz", size)]


@pytest.mark.parametrize(
    ("content_type", "content"),
    [
        pytest.param(JSON_V1, JSON_LIST, id="v1-json"),
        pytest.param(TEXT_HTML, HTML_LIST, id="text-html"),
        pytest.param(HTML_V1, HTML_LIST, id="v1-html"),
        pytest.param(None, HTML_LIST, id="missing"),
    ],
)
def test_parse_response_list(content_type: str | None, content: bytes) -> None:
    assert parse_response(content, content_type, LIST_URL, project=False) == ProjectList(names=("pkg",))


@pytest.mark.parametrize("project", [True, False])
def test_parse_response_html_charset(project: bool) -> None:
    content = '<a href="caf%C3%A9/">café</a>'.encode("latin-1")
    parsed = parse_response(
        content, "text/html; charset=ISO-8859-1", LIST_URL + "caf%C3%A9/", project=project
    )
    if isinstance(parsed, ProjectPage):
        assert [file.filename for file in parsed.files] == ["café"]
    else:
        assert parsed.names == ("café",)


@pytest.mark.parametrize(
    ("content_type", "reason"),
    [
        pytest.param("text/plain", "unexpected Content-Type 'text/plain'", id="text-plain"),
        pytest.param(
            "application/octet-stream",
            "unexpected Content-Type 'application/octet-stream'",
            id="octet-stream",
        ),
        pytest.param(
            "application/vnd.pypi.simple.v2+json",
            "unsupported API version in Content-Type 'application/vnd.pypi.simple.v2+json'",
            id="future-major",
        ),
        pytest.param(
            "application/vnd.pypi.simple.v1+xml",
            "unexpected Content-Type 'application/vnd.pypi.simple.v1+xml'",
            id="unknown-syntax",
        ),
    ],
)
def test_parse_response_rejects(content_type: str, reason: str) -> None:
    with pytest.raises(InvalidPage) as raised:
        parse_response(HTML_PAGE, content_type, PAGE_URL, project=True)
    assert (raised.value.url, raised.value.reason) == (PAGE_URL, reason)


def test_parse_response_does_not_sniff() -> None:
    # A JSON body labelled HTML is parsed as HTML (and has no links), not rescued by guessing.
    page = parse_response(JSON_PAGE, TEXT_HTML, PAGE_URL, project=True)
    assert page.files == ()
    with pytest.raises(InvalidPage, match="invalid JSON"):
        parse_response(HTML_PAGE, JSON_V1, PAGE_URL, project=True)
