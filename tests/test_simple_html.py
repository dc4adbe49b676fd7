"""The tolerant PEP 503 HTML parser, against pages shaped like real upstreams."""

from __future__ import annotations

import pytest

from index_proxy.simple.errors import InvalidPage
from index_proxy.simple.html import parse_project_list_html, parse_project_page_html
from index_proxy.simple.model import DistributionFile, ProjectList, ProjectPage

SHA_A = "a" * 63 + "1"
SHA_B = "b" * 63 + "2"
SHA_M = "c" * 63 + "3"

PYPI_URL = "https://pypi.example/simple/alpha-lib/"
PYPI_PAGE = f"""<!DOCTYPE html>
<html>
  <head>
    <meta name="pypi:repository-version" content="1.4">
    <meta name="pypi:project-status" content="archived">
    <meta name="pypi:project-status-reason" content="moved to beta-tool">
    <title>Links for alpha-lib</title>
  </head>
  <body>
    <h1>Links for alpha-lib</h1>
    <a href="https://files.example/packages/ab/cd/alpha_lib-1.0.tar.gz#sha256={SHA_A}" data-requires-python="&gt;=3.8,&lt;4" >alpha_lib-1.0.tar.gz</a><br />
    <a href="https://files.example/packages/ef/01/alpha_lib-2.0.0-py3-none-any.whl#sha256={SHA_B}" data-requires-python="&gt;=3.9" data-dist-info-metadata="sha256={SHA_M}" data-core-metadata="sha256={SHA_M}" data-yanked="broken &amp; &lt;bad&gt; build" data-provenance="https://pypi.example/integrity/alpha-lib/2.0.0/alpha_lib-2.0.0-py3-none-any.whl/provenance">alpha_lib-2.0.0-py3-none-any.whl</a><br />
  </body>
</html>
<!--SERIAL 12345-->
"""  # noqa: E501
PYPI_EXPECTED = ProjectPage(
    name="alpha-lib",
    files=(
        DistributionFile(
            filename="alpha_lib-1.0.tar.gz",
            url="https://files.example/packages/ab/cd/alpha_lib-1.0.tar.gz",
            hashes={"sha256": SHA_A},
            requires_python=">=3.8,<4",
        ),
        DistributionFile(
            filename="alpha_lib-2.0.0-py3-none-any.whl",
            url="https://files.example/packages/ef/01/alpha_lib-2.0.0-py3-none-any.whl",
            hashes={"sha256": SHA_B},
            requires_python=">=3.9",
            yanked="broken & <bad> build",
            core_metadata={"sha256": SHA_M},
        ),
    ),
    api_version="1.4",
    project_status="archived",
)

DEVPI_URL = "https://devpi.example/root/pypi/+simple/alpha-lib/"
DEVPI_PAGE = f"""<html><head><title>root/pypi: links for alpha-lib</title></head><body>
<h1>root/pypi: links for alpha-lib</h1>
<a href="../../+f/ab/cd/alpha_lib-1.0.tar.gz#sha256={SHA_A}">root/pypi/alpha_lib-1.0.tar.gz</a><br/>
<a href="../../+f/ef/01/alpha_lib-2.0.0-py3-none-any.whl#sha256={SHA_B}" data-requires-python="&gt;=3.9">root/pypi/alpha_lib-2.0.0-py3-none-any.whl</a><br/>
</body></html>
"""  # noqa: E501
DEVPI_EXPECTED = ProjectPage(
    name="alpha-lib",
    files=(
        DistributionFile(
            filename="alpha_lib-1.0.tar.gz",
            url="https://devpi.example/root/pypi/+f/ab/cd/alpha_lib-1.0.tar.gz",
            hashes={"sha256": SHA_A},
        ),
        DistributionFile(
            filename="alpha_lib-2.0.0-py3-none-any.whl",
            url="https://devpi.example/root/pypi/+f/ef/01/alpha_lib-2.0.0-py3-none-any.whl",
            hashes={"sha256": SHA_B},
            requires_python=">=3.9",
        ),
    ),
)

# Uppercase everything, unquoted and bare attributes, no closing tags, an anchor in <head>, a pure fragment
# link, an empty href, an anchor without href and an uppercase digest.
MESSY_URL = "http://mirror.example/simple/Beta_Tool"
MESSY_PAGE = f"""<HTML><HEAD><TITLE>Beta_Tool</TITLE>
<A HREF=/files/beta_tool-0.1.zip#MD5=ABCDEF0123>beta_tool-0.1.zip</A>
<BODY>
<A NAME=top>
<A HREF="#top">back to top
<A HREF="">nothing
<A HREF=beta_tool-0.2.tar.gz#SHA256={SHA_A.upper()} DATA-YANKED DATA-REQUIRES-PYTHON=&gt;=3.7>beta_tool-0.2.tar.gz
<P><A href='beta_tool-0.3-py2.py3-none-any.whl' data-gpg-sig=TRUE data-core-metadata=true>beta_tool-0.3-py2.py3-none-any.whl
<a href = "sub/beta%2Btool-0.4.tar.gz?token=x%20y#egg=beta_tool" data-yanked=" ">ignored text
"""  # noqa: E501
MESSY_EXPECTED = ProjectPage(
    name="Beta_Tool",
    files=(
        DistributionFile(
            filename="beta_tool-0.1.zip",
            url="http://mirror.example/files/beta_tool-0.1.zip",
            hashes={"md5": "abcdef0123"},
        ),
        DistributionFile(
            filename="beta_tool-0.2.tar.gz",
            url="http://mirror.example/simple/beta_tool-0.2.tar.gz",
            hashes={"sha256": SHA_A},
            requires_python=">=3.7",
            yanked=True,
        ),
        DistributionFile(
            filename="beta_tool-0.3-py2.py3-none-any.whl",
            url="http://mirror.example/simple/beta_tool-0.3-py2.py3-none-any.whl",
            core_metadata=True,
            gpg_sig=True,
        ),
        DistributionFile(
            filename="beta+tool-0.4.tar.gz",
            url="http://mirror.example/simple/sub/beta%2Btool-0.4.tar.gz?token=x%20y",
            yanked=True,
        ),
    ),
)

# The <base> comes after the first link and is itself relative: it still applies to every link.
BASE_URL = "https://index.example/simple/gamma/"
BASE_PAGE = f"""<html><head>
<a href="gamma-1.0.tar.gz#sha256={SHA_A}">gamma-1.0.tar.gz</a>
<base href="../../packages/gamma/">
<base href="https://ignored.example/">
</head><body>
<a href="gamma-2.0.tar.gz">gamma-2.0.tar.gz</a>
<a href="/elsewhere/gamma-3.0.tar.gz">gamma-3.0.tar.gz</a>
<a href="https://cdn.example/gamma-4.0.tar.gz">gamma-4.0.tar.gz</a>
</body></html>
"""
BASE_EXPECTED = ProjectPage(
    name="gamma",
    files=(
        DistributionFile(
            filename="gamma-1.0.tar.gz",
            url="https://index.example/packages/gamma/gamma-1.0.tar.gz",
            hashes={"sha256": SHA_A},
        ),
        DistributionFile(
            filename="gamma-2.0.tar.gz", url="https://index.example/packages/gamma/gamma-2.0.tar.gz"
        ),
        DistributionFile(filename="gamma-3.0.tar.gz", url="https://index.example/elsewhere/gamma-3.0.tar.gz"),
        DistributionFile(filename="gamma-4.0.tar.gz", url="https://cdn.example/gamma-4.0.tar.gz"),
    ),
)

EMPTY_EXPECTED = ProjectPage(name="nothing-here")


@pytest.mark.parametrize(
    ("content", "url", "expected"),
    [
        pytest.param(PYPI_PAGE, PYPI_URL, PYPI_EXPECTED, id="pypi"),
        pytest.param(DEVPI_PAGE, DEVPI_URL, DEVPI_EXPECTED, id="devpi-relative"),
        pytest.param(MESSY_PAGE, MESSY_URL, MESSY_EXPECTED, id="messy"),
        pytest.param(BASE_PAGE, BASE_URL, BASE_EXPECTED, id="base-href"),
        pytest.param("", "https://x.example/simple/nothing-here/", EMPTY_EXPECTED, id="empty"),
        pytest.param(
            "<html><body><h1>No links</h1></body></html>",
            "https://x.example/simple/nothing-here/",
            EMPTY_EXPECTED,
            id="no-anchors",
        ),
    ],
)
def test_project_page(content: str, url: str, expected: ProjectPage) -> None:
    assert parse_project_page_html(content.encode(), url) == expected


def _only_file(anchor: str, url: str = "https://x.example/simple/pkg/") -> DistributionFile:
    page = parse_project_page_html(anchor.encode(), url)
    assert len(page.files) == 1
    return page.files[0]


@pytest.mark.parametrize(
    ("attribute", "expected"),
    [
        pytest.param("", None, id="absent-unknown"),
        pytest.param('data-core-metadata="true"', True, id="true"),
        pytest.param("data-core-metadata=TRUE", True, id="true-uppercase"),
        pytest.param('data-core-metadata="false"', False, id="false"),
        pytest.param(f'data-core-metadata="sha256={SHA_M}"', {"sha256": SHA_M}, id="sha256"),
        pytest.param(f'data-core-metadata="SHA256={SHA_M.upper()}"', {"sha256": SHA_M}, id="hash-lowercased"),
        pytest.param('data-core-metadata="blake2b=00ff"', {"blake2b": "00ff"}, id="other-algorithm"),
        pytest.param("data-core-metadata", True, id="bare-attribute"),
        pytest.param('data-core-metadata=""', True, id="empty-value"),
        pytest.param('data-core-metadata="sha256=not-hex"', True, id="unreadable-hash-still-exists"),
        pytest.param('data-core-metadata="yes"', True, id="unknown-value-still-exists"),
        pytest.param(f'data-dist-info-metadata="sha256={SHA_M}"', {"sha256": SHA_M}, id="legacy-only"),
        pytest.param('data-dist-info-metadata="false"', False, id="legacy-false"),
        pytest.param(
            f'data-dist-info-metadata="sha256={SHA_A}" data-core-metadata="sha256={SHA_M}"',
            {"sha256": SHA_M},
            id="core-wins-over-legacy",
        ),
        pytest.param(
            'data-core-metadata="false" data-dist-info-metadata="true"', False, id="core-false-wins"
        ),
    ],
)
def test_core_metadata(attribute: str, expected: object) -> None:
    assert _only_file(f'<a href="pkg-1.0.tar.gz" {attribute}>pkg-1.0.tar.gz</a>').core_metadata == expected


@pytest.mark.parametrize(
    ("attribute", "expected"),
    [
        pytest.param("", False, id="absent"),
        pytest.param("data-yanked", True, id="bare"),
        pytest.param('data-yanked=""', True, id="empty"),
        pytest.param('data-yanked="   "', True, id="blank"),
        pytest.param('data-yanked="CVE-2026-0001"', "CVE-2026-0001", id="reason"),
        pytest.param(
            'data-yanked=" use &lt;2.0 &amp; not this "', "use <2.0 & not this", id="reason-entities"
        ),
        pytest.param("DATA-YANKED=broken", "broken", id="uppercase-unquoted"),
    ],
)
def test_yanked(attribute: str, expected: object) -> None:
    assert _only_file(f'<a href="pkg-1.0.tar.gz" {attribute}>pkg-1.0.tar.gz</a>').yanked == expected


@pytest.mark.parametrize(
    ("attribute", "expected"),
    [
        pytest.param("", None, id="absent"),
        pytest.param('data-requires-python="&gt;=3.8"', ">=3.8", id="gt"),
        pytest.param('data-requires-python="&gt;=3.6,&lt;4.0,!=3.7.*"', ">=3.6,<4.0,!=3.7.*", id="lt-gt"),
        pytest.param('data-requires-python="&#62;=3.10"', ">=3.10", id="numeric-entity"),
        pytest.param('data-requires-python=">=3.9"', ">=3.9", id="raw"),
        pytest.param('data-requires-python=""', None, id="empty"),
        pytest.param('data-requires-python=" &gt;=3.8 "', ">=3.8", id="padded"),
    ],
)
def test_requires_python(attribute: str, expected: str | None) -> None:
    assert _only_file(f'<a href="pkg-1.0.tar.gz" {attribute}>pkg-1.0.tar.gz</a>').requires_python == expected


@pytest.mark.parametrize(
    ("attribute", "expected"),
    [
        pytest.param("", None, id="absent"),
        pytest.param('data-gpg-sig="true"', True, id="true"),
        pytest.param('data-gpg-sig="false"', False, id="false"),
        pytest.param("data-gpg-sig=False", False, id="false-capitalised"),
        pytest.param('data-gpg-sig="maybe"', None, id="unreadable"),
        pytest.param("data-gpg-sig", None, id="bare"),
    ],
)
def test_gpg_sig(attribute: str, expected: bool | None) -> None:
    assert _only_file(f'<a href="pkg-1.0.tar.gz" {attribute}>pkg-1.0.tar.gz</a>').gpg_sig == expected


@pytest.mark.parametrize(
    ("href", "url", "hashes"),
    [
        pytest.param(f"pkg-1.0.tar.gz#sha256={SHA_A}", "pkg-1.0.tar.gz", {"sha256": SHA_A}, id="sha256"),
        pytest.param("pkg-1.0.tar.gz#SHA512=ABCDEF", "pkg-1.0.tar.gz", {"sha512": "abcdef"}, id="uppercase"),
        pytest.param("pkg-1.0.tar.gz#md5=0123", "pkg-1.0.tar.gz", {"md5": "0123"}, id="md5"),
        pytest.param(
            "pkg-1.0.tar.gz#sha3_256=00aa&md5=11bb",
            "pkg-1.0.tar.gz",
            {"sha3_256": "00aa", "md5": "11bb"},
            id="several",
        ),
        pytest.param("pkg-1.0.tar.gz#egg=cafe", "pkg-1.0.tar.gz", {}, id="egg-is-not-a-hash"),
        pytest.param("pkg-1.0.tar.gz#sha256=not-hex", "pkg-1.0.tar.gz", {}, id="not-hex"),
        pytest.param("pkg-1.0.tar.gz#sha256=", "pkg-1.0.tar.gz", {}, id="empty-digest"),
        pytest.param("pkg-1.0.tar.gz#", "pkg-1.0.tar.gz", {}, id="empty-fragment"),
        pytest.param("pkg-1.0.tar.gz?a=1#sha256=ff", "pkg-1.0.tar.gz?a=1", {"sha256": "ff"}, id="query-kept"),
    ],
)
def test_fragment_hashes(href: str, url: str, hashes: dict[str, str]) -> None:
    file = _only_file(f'<a href="{href}">pkg-1.0.tar.gz</a>')
    assert file.url == "https://x.example/simple/pkg/" + url
    assert file.hashes == hashes


@pytest.mark.parametrize(
    ("anchor", "filename", "url"),
    [
        pytest.param(
            '<a href="/p/pkg-1.0.tar.gz">display text</a>',
            "pkg-1.0.tar.gz",
            "https://x.example/p/pkg-1.0.tar.gz",
            id="href-beats-text",
        ),
        pytest.param(
            '<a href="pkg%2Bx-1.0.tar.gz">pkg+x-1.0.tar.gz</a>',
            "pkg+x-1.0.tar.gz",
            "https://x.example/simple/pkg/pkg%2Bx-1.0.tar.gz",
            id="percent-decoded",
        ),
        pytest.param(
            '<a href="/download/123/">pkg-1.0.tar.gz</a>',
            "pkg-1.0.tar.gz",
            "https://x.example/download/123/",
            id="directory-url-uses-text",
        ),
        pytest.param(
            '<a href="/get/?file=pkg-1.0.tar.gz"> <b>pkg-1.0</b>.tar.gz </a>',
            "pkg-1.0.tar.gz",
            "https://x.example/get/?file=pkg-1.0.tar.gz",
            id="text-across-inline-tags",
        ),
        pytest.param(
            '<a href="/dir/">\n</a>',
            "",
            "https://x.example/dir/",
            id="no-name-at-all-still-kept",
        ),
        pytest.param(
            '<a href=" pkg-1.0.tar.gz ">x</a>',
            "pkg-1.0.tar.gz",
            "https://x.example/simple/pkg/pkg-1.0.tar.gz",
            id="href-whitespace",
        ),
        pytest.param(
            '<a href="pkg-1.0.tar.gz?a=1&amp;b=2">x</a>',
            "pkg-1.0.tar.gz",
            "https://x.example/simple/pkg/pkg-1.0.tar.gz?a=1&b=2",
            id="href-entities",
        ),
        pytest.param(
            '<a href="a.tar.gz" href="b.tar.gz">x</a>',
            "a.tar.gz",
            "https://x.example/simple/pkg/a.tar.gz",
            id="first-duplicate-attribute-wins",
        ),
        pytest.param(
            '<a href="pkg-1.0.tar.gz"/>',
            "pkg-1.0.tar.gz",
            "https://x.example/simple/pkg/pkg-1.0.tar.gz",
            id="self-closing",
        ),
    ],
)
def test_filename_and_url(anchor: str, filename: str, url: str) -> None:
    file = _only_file(anchor)
    assert (file.filename, file.url) == (filename, url)


@pytest.mark.parametrize(
    "anchors",
    [
        pytest.param('<a href="">x</a>', id="empty-href"),
        pytest.param('<a href="   ">x</a>', id="blank-href"),
        pytest.param("<a href>x</a>", id="bare-href"),
        pytest.param('<a href="#sha256=ff">x</a>', id="pure-fragment"),
        pytest.param('<a name="top">x</a>', id="no-href"),
        pytest.param('<!-- <a href="pkg-1.0.tar.gz">x</a> -->', id="commented-out"),
        pytest.param('<script>document.write("<a href=pkg-1.0.tar.gz>x</a>")</script>', id="in-script"),
    ],
)
def test_ignored_anchors(anchors: str) -> None:
    assert parse_project_page_html(anchors.encode(), "https://x.example/simple/pkg/").files == ()


def test_unclosed_anchor_text_stops_at_the_next_block() -> None:
    page = parse_project_list_html(
        b"<ul><li><a href=/simple/one/>one<li><a href=/simple/two/>two</ul><p>footer text</p>",
        "https://x.example/simple/",
    )
    assert page.names == ("one", "two")


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("https://x.example/simple/alpha-lib/", "alpha-lib"),
        ("https://x.example/simple/Alpha_Lib", "Alpha_Lib"),
        ("https://x.example/simple/alpha-lib/?format=text/html", "alpha-lib"),
        ("https://x.example/root/pypi/+simple/zope.interface//", "zope.interface"),
        ("https://x.example/simple/caf%C3%A9/", "café"),
    ],
)
def test_project_name_from_url(url: str, name: str) -> None:
    assert parse_project_page_html(b"", url).name == name


@pytest.mark.parametrize(
    ("meta", "version"),
    [
        pytest.param("", "1.0", id="absent-means-1.0"),
        pytest.param('<meta name="pypi:repository-version" content="1.0">', "1.0", id="1.0"),
        pytest.param('<META NAME="PyPI:Repository-Version" CONTENT=" 1.4 ">', "1.4", id="uppercase-padded"),
        pytest.param('<meta name="pypi:repository-version" content="1.99">', "1.99", id="newer-minor"),
        pytest.param('<meta name="pypi:repository-version" content="1">', "1", id="major-only"),
        pytest.param(
            '<meta name="pypi:repository-version" content="1.1">'
            '<meta name="pypi:repository-version" content="2.0">',
            "1.1",
            id="first-wins",
        ),
    ],
)
def test_api_version(meta: str, version: str) -> None:
    content = f"<html><head>{meta}</head><body></body></html>".encode()
    assert parse_project_page_html(content, "https://x.example/simple/pkg/").api_version == version
    assert parse_project_list_html(content, "https://x.example/simple/").api_version == version


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        pytest.param("2.0", "unsupported API version '2.0' (major version must be 1)", id="major-2"),
        pytest.param("0.9", "unsupported API version '0.9' (major version must be 1)", id="major-0"),
        pytest.param("one", "malformed API version 'one'", id="words"),
        pytest.param("", "malformed API version ''", id="empty"),
        pytest.param("1.", "malformed API version '1.'", id="trailing-dot"),
        pytest.param("1.0.1", "malformed API version '1.0.1'", id="three-parts"),
    ],
)
def test_invalid_api_version(content: str, reason: str) -> None:
    page = f'<meta name="pypi:repository-version" content="{content}"><a href="x.tar.gz">x</a>'.encode()
    url = "https://x.example/simple/pkg/"
    with pytest.raises(InvalidPage) as raised:
        parse_project_page_html(page, url)
    assert (raised.value.url, raised.value.reason) == (url, reason)
    assert str(raised.value) == f"{url}: {reason}"
    with pytest.raises(InvalidPage):
        parse_project_list_html(page, "https://x.example/simple/")


@pytest.mark.parametrize(
    ("content", "encoding"),
    [
        pytest.param('<a href="caf%C3%A9-1.0.tar.gz">café-1.0.tar.gz</a>'.encode(), None, id="utf-8-default"),
        pytest.param('<a href="x/">café-1.0.tar.gz</a>'.encode("latin-1"), "ISO-8859-1", id="charset-param"),
        pytest.param(
            '<meta charset="windows-1252"><a href="x/">café-1.0.tar.gz</a>'.encode("cp1252"),
            None,
            id="meta-charset",
        ),
        pytest.param(
            '<meta http-equiv="Content-Type" content="text/html; charset=latin-1">'
            '<a href="x/">café-1.0.tar.gz</a>'.encode("latin-1"),
            None,
            id="meta-http-equiv",
        ),
        pytest.param(
            '<meta charset="latin-1"><a href="x/">café-1.0.tar.gz</a>'.encode(),
            "utf-8",
            id="charset-param-beats-meta",
        ),
        pytest.param(
            '\ufeff<a href="x/">café-1.0.tar.gz</a>'.encode(), "latin-1", id="utf-8-bom-beats-charset-param"
        ),
        pytest.param('\ufeff<a href="x/">café-1.0.tar.gz</a>'.encode("utf-16"), None, id="utf-16-bom"),
        pytest.param(
            '<a href="x/">café-1.0.tar.gz</a>'.encode(), "no-such-charset", id="unknown-charset-falls-back"
        ),
    ],
)
def test_encoding(content: bytes, encoding: str | None) -> None:
    page = parse_project_page_html(content, "https://x.example/simple/caf%C3%A9/", encoding=encoding)
    assert [file.filename for file in page.files] == ["café-1.0.tar.gz"]


def test_undecodable_bytes_do_not_fail() -> None:
    page = parse_project_page_html(b'<a href="pkg-1.0.tar.gz">\xff\xfe</a>', "https://x.example/simple/pkg/")
    assert page.files[0].filename == "pkg-1.0.tar.gz"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(
            b"""<!DOCTYPE html><html><head><meta name="pypi:repository-version" content="1.4">
            <title>Simple index</title></head><body>
            <a href="/simple/alpha-lib/">alpha-lib</a>
            <a href="/simple/beta-tool/">Beta_Tool</a>
            <a href="/simple/zope-interface/">zope.interface</a>
            </body></html>""",
            ProjectList(names=("alpha-lib", "Beta_Tool", "zope.interface"), api_version="1.4"),
            id="pypi",
        ),
        pytest.param(
            b"<A HREF=alpha-lib/>alpha-lib</A><BR><A HREF=gamma/>\n  gamma  \n<br>",
            ProjectList(names=("alpha-lib", "gamma")),
            id="messy",
        ),
        pytest.param(
            b'<a href="alpha-lib/"></a><a href="/simple/Beta_Tool"></a><a href="#">x</a><a href="/">',
            ProjectList(names=("alpha-lib", "Beta_Tool")),
            id="names-from-href-when-no-text",
        ),
        pytest.param(b"", ProjectList(), id="empty"),
    ],
)
def test_project_list(content: bytes, expected: ProjectList) -> None:
    assert parse_project_list_html(content, "https://x.example/simple/") == expected


def test_project_list_honours_encoding() -> None:
    content = '<a href="caf%C3%A9/">café</a>'.encode("latin-1")
    page = parse_project_list_html(content, "https://x.example/simple/", encoding="latin-1")
    assert page.names == ("café",)
