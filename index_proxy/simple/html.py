"""Tolerant parser for PEP 503 / PEP 629 HTML simple-index pages.

Upstreams range from PyPI's tidy output to hand-rolled directory listings, so the parser accepts what a
browser would (uppercase, unquoted attributes, unclosed tags, anchors outside ``<body>``) rather than
validating markup.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import unquote, urljoin, urlsplit

from .errors import check_api_version
from .model import CoreMetadata, DistributionFile, ProjectList, ProjectPage, Yanked

__all__ = ["parse_project_list_html", "parse_project_page_html"]

_HEX = re.compile(r"[0-9a-fA-F]+")
_HASH_NAME = re.compile(r"[A-Za-z0-9_-]+")
# pip's link fragments that are not digests; an ``#egg=cafe`` must not become a hash named "egg".
_NON_HASH_FRAGMENT_KEYS = frozenset({"egg", "subdirectory"})
# A charset declared in a <meta> tag near the top of the page (both the HTML5 and the http-equiv form).
_META_CHARSET = re.compile(rb"<meta\b[^>]*?charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:-]+)", re.IGNORECASE)
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
# Elements whose end does not end a surrounding link in practice; any other end tag closes an unclosed
# <a>, so that its text does not swallow the rest of a sloppy page.
_INLINE = frozenset(
    {"b", "big", "code", "em", "font", "i", "small", "span", "strong", "sub", "sup", "tt", "u"}
)


def parse_project_page_html(content: bytes, url: str, *, encoding: str | None = None) -> ProjectPage:
    """Parse a project detail page (``<base>/<name>/``) fetched from ``url``.

    ``encoding`` is the charset of the response's Content-Type, if it had one.
    """
    document = _parse(content, url, encoding)
    files = tuple(_distribution_file(anchor, document.base_url) for anchor in document.anchors)
    return ProjectPage(
        name=_project_name(url),
        files=files,
        api_version=document.api_version,
        project_status=document.project_status,
    )


def parse_project_list_html(content: bytes, url: str, *, encoding: str | None = None) -> ProjectList:
    """Parse a project list page (``<base>/``) fetched from ``url``; names are kept as written.

    ``encoding`` is the charset of the response's Content-Type, if it had one.
    """
    document = _parse(content, url, encoding)
    names: list[str] = []
    for anchor in document.anchors:
        # PEP 503 puts the name in the link text; a link without text still names its target.
        name = anchor.text or _project_name(anchor.href.partition("#")[0])
        if name:
            names.append(name)
    return ProjectList(names=tuple(names), api_version=document.api_version)


@dataclass(slots=True)
class _Anchor:
    href: str
    attrs: Mapping[str, str | None]
    text: str = ""


@dataclass(slots=True)
class _Document:
    anchors: list[_Anchor]
    base_url: str
    api_version: str
    project_status: str | None


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.anchors: list[_Anchor] = []
        self.base_href: str | None = None
        self.meta: dict[str, str] = {}
        self._open: _Anchor | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._close_anchor()
            attributes = _first_wins(attrs)
            href = (attributes.get("href") or "").strip()
            if href and not href.startswith("#"):
                self._open = _Anchor(href=href, attrs=attributes)
        elif tag == "br":
            self._close_anchor()
        elif tag == "base":
            if self.base_href is None:
                href = _first_wins(attrs).get("href")
                # Only the first <base> with an href counts, and it applies to links before it too.
                if href and href.strip():
                    self.base_href = href.strip()
        elif tag == "meta":
            attributes = _first_wins(attrs)
            name, value = attributes.get("name"), attributes.get("content")
            if name and value is not None:
                self.meta.setdefault(name.strip().lower(), value)

    def handle_endtag(self, tag: str) -> None:
        if tag not in _INLINE:
            self._close_anchor()

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._text.append(data)

    def close(self) -> None:
        super().close()
        self._close_anchor()

    def _close_anchor(self) -> None:
        if self._open is not None:
            self._open.text = "".join(self._text).strip()
            self.anchors.append(self._open)
            self._open = None
        self._text.clear()


def _first_wins(attrs: list[tuple[str, str | None]]) -> dict[str, str | None]:
    # Browsers keep the first of repeated attributes; dict(attrs) would keep the last.
    attributes: dict[str, str | None] = {}
    for name, value in attrs:
        attributes.setdefault(name, value)
    return attributes


def _parse(content: bytes, url: str, encoding: str | None) -> _Document:
    collector = _Collector()
    collector.feed(_decode(content, encoding))
    collector.close()
    api_version = collector.meta.get("pypi:repository-version")
    status = (collector.meta.get("pypi:project-status") or "").strip()
    base_url = urljoin(url, collector.base_href) if collector.base_href else url
    return _Document(
        anchors=collector.anchors,
        base_url=base_url,
        # The spec says to assume 1.0 when a page does not declare its version.
        api_version="1.0" if api_version is None else check_api_version(url, api_version),
        project_status=status or None,
    )


def _decode(content: bytes, encoding: str | None) -> str:
    # The HTML standard's order: a byte order mark beats the transport's charset, which beats a <meta>.
    for bom, codec in _BOMS:
        if content.startswith(bom):
            return content.decode(codec, errors="replace")
    for label in (encoding, _sniff_meta_charset(content)):
        codec = _known_codec(label)
        if codec is not None:
            return content.decode(codec, errors="replace")
    return content.decode("utf-8", errors="replace")


def _sniff_meta_charset(content: bytes) -> str | None:
    match = _META_CHARSET.search(content, 0, 1024)
    if match is None:
        return None
    label = match[1].decode("ascii")
    # A page that could be read as ASCII to find this declaration cannot really be UTF-16.
    return "utf-8" if label.lower().startswith("utf-16") else label


def _known_codec(label: str | None) -> str | None:
    if not label:
        return None
    try:
        return codecs.lookup(label.strip()).name
    except LookupError:
        # A charset Python does not know is an upstream mistake, not a reason to drop the page.
        return None


def _distribution_file(anchor: _Anchor, base_url: str) -> DistributionFile:
    target, _, fragment = anchor.href.partition("#")
    file_url = urljoin(base_url, target)
    attrs = anchor.attrs
    # PEP 714: the legacy name is only a fallback; when both are sent, the current one wins.
    core_metadata = _core_metadata(attrs, "data-core-metadata")
    if core_metadata is None:
        core_metadata = _core_metadata(attrs, "data-dist-info-metadata")
    requires_python = (attrs.get("data-requires-python") or "").strip()
    return DistributionFile(
        # A link to a directory-style URL has no filename of its own, so the text is the best we have.
        filename=_last_segment(file_url) or anchor.text,
        url=file_url,
        hashes=_fragment_hashes(fragment),
        requires_python=requires_python or None,
        yanked=_yanked(attrs),
        core_metadata=core_metadata,
        gpg_sig=_boolean(attrs.get("data-gpg-sig")),
    )


def _core_metadata(attrs: Mapping[str, str | None], name: str) -> CoreMetadata:
    if name not in attrs:
        return None
    value = (attrs[name] or "").strip()
    flag = _boolean(value)
    if flag is not None:
        return flag
    name, sep, digest = value.partition("=")
    if sep and _HASH_NAME.fullmatch(name) and _HEX.fullmatch(digest):
        return {name.lower(): digest.lower()}
    # PEP 658: the attribute's presence alone promises the metadata file, whatever its value says.
    return True


def _yanked(attrs: Mapping[str, str | None]) -> Yanked:
    if "data-yanked" not in attrs:
        return False
    reason = (attrs["data-yanked"] or "").strip()
    return reason or True


def _boolean(value: str | None) -> bool | None:
    if value is None:
        return None
    lowered = value.strip().lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    return None


def _fragment_hashes(fragment: str) -> dict[str, str]:
    hashes: dict[str, str] = {}
    # pip accepts several "name=value" pairs joined by "&"; the first digest for an algorithm wins.
    for item in fragment.split("&"):
        name, sep, digest = item.partition("=")
        name = name.strip().lower()
        digest = digest.strip()
        if (
            sep
            and name not in _NON_HASH_FRAGMENT_KEYS
            and _HASH_NAME.fullmatch(name)
            and _HEX.fullmatch(digest)
        ):
            hashes.setdefault(name, digest.lower())
    return hashes


def _last_segment(url: str) -> str:
    return unquote(urlsplit(url).path.rpartition("/")[2])


def _project_name(url: str) -> str:
    return unquote(urlsplit(url).path.rstrip("/").rpartition("/")[2])
