"""Content negotiation for the simple API (PEP 691), on both sides of the proxy.

Serving side: `negotiate` turns a client's ``Accept`` header (or ``?format=``) into the format and the
concrete Content-Type to answer with. Upstream side: `UPSTREAM_ACCEPT` is what we ask upstreams for, and
`parse_response` hands their answer to the parser its Content-Type calls for.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Final, Literal, overload

from .errors import InvalidPage
from .html import parse_project_list_html, parse_project_page_html
from .json import parse_project_list_json, parse_project_page_json
from .model import ProjectList, ProjectPage

__all__ = [
    "HTML_V1",
    "JSON_V1",
    "TEXT_HTML",
    "UPSTREAM_ACCEPT",
    "Negotiated",
    "PageFormat",
    "negotiate",
    "parse_response",
]

JSON_V1: Final = "application/vnd.pypi.simple.v1+json"
HTML_V1: Final = "application/vnd.pypi.simple.v1+html"
TEXT_HTML: Final = "text/html"
JSON_LATEST: Final = "application/vnd.pypi.simple.latest+json"
HTML_LATEST: Final = "application/vnd.pypi.simple.latest+html"

# JSON first because it carries more (PEP 700 sizes and upload times); v1+html before text/html because a
# client that names the versioned type understands it. text/html stays as the last resort the spec asks for.
UPSTREAM_ACCEPT: Final = f"{JSON_V1}, {HTML_V1};q=0.2, {TEXT_HTML};q=0.01"


class PageFormat(enum.Enum):
    JSON = "json"
    HTML = "html"


@dataclass(frozen=True, slots=True)
class Negotiated:
    """The format to render a page in, and the concrete Content-Type to send it with."""

    format: PageFormat
    content_type: str


_AS_JSON: Final = Negotiated(PageFormat.JSON, JSON_V1)
_AS_HTML_V1: Final = Negotiated(PageFormat.HTML, HTML_V1)
_AS_TEXT_HTML: Final = Negotiated(PageFormat.HTML, TEXT_HTML)

# The content types that name an answer outright, both in ?format= and in Accept; "latest" is answered with
# the concrete v1 type, as the spec requires.
_NAMED: Final[dict[str, Negotiated]] = {
    JSON_V1: _AS_JSON,
    JSON_LATEST: _AS_JSON,
    HTML_V1: _AS_HTML_V1,
    HTML_LATEST: _AS_HTML_V1,
    TEXT_HTML: _AS_TEXT_HTML,
}
_WILDCARDS: Final[dict[str, tuple[Negotiated, ...]]] = {
    "*/*": (_AS_JSON, _AS_HTML_V1, _AS_TEXT_HTML),
    "application/*": (_AS_JSON, _AS_HTML_V1),
    "text/*": (_AS_TEXT_HTML,),
}

# Tie-break at equal q: richest first. v1+html reached only through a wildcard ranks below text/html, so a
# client that never named the vendor type (a browser, curl with */*) gets the Content-Type it surely knows.
_RANK_JSON, _RANK_HTML_V1, _RANK_TEXT_HTML, _RANK_HTML_V1_WILDCARD = 4, 3, 2, 1

# RFC 9110 weight: 0 to 1 with at most three decimals.
_QVALUE = re.compile(r"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?")

_CACHE_SIZE: Final = 256
# Longer headers are negotiated but not remembered, so that odd clients cannot pin large strings in memory.
_CACHE_KEY_LIMIT: Final = 1024
_cache: dict[tuple[str | None, str | None], Negotiated | None] = {}


def negotiate(accept: str | None, format_param: str | None = None) -> Negotiated | None:
    """Choose how to answer a page request, or return None when nothing acceptable exists (answer 406).

    ``format_param`` is the ``?format=`` query value and overrides ``Accept``; an empty value counts as
    absent. A missing or empty ``Accept`` gets ``text/html``, the one format every client understands.
    """
    key = (accept, format_param)
    try:
        return _cache[key]
    except KeyError:
        pass
    result = _negotiate(accept, format_param)
    if len(accept or "") + len(format_param or "") <= _CACHE_KEY_LIMIT:
        # Clearing everything is cruder than LRU, but the working set (a handful of client headers) refills
        # at once and no bookkeeping runs on the hit path.
        if len(_cache) >= _CACHE_SIZE:
            _cache.clear()
        _cache[key] = result
    return result


def _negotiate(accept: str | None, format_param: str | None) -> Negotiated | None:
    if format_param:
        return _NAMED.get(format_param.strip().lower())
    if accept is None or not accept.strip():
        return _AS_TEXT_HTML

    # For each answer, the q of the most specific media range that matches it (RFC 9110 section 12.5.1):
    # "*/*;q=1, text/html;q=0" excludes text/html even though the wildcard accepts it.
    best: dict[Negotiated, tuple[int, float]] = {}
    html_v1_explicit = False
    for media_range in accept.split(","):
        parsed = _parse_media_range(media_range)
        if parsed is None:
            continue
        mime, q = parsed
        explicit = _NAMED.get(mime)
        if explicit is not None:
            targets: tuple[Negotiated, ...] = (explicit,)
            specificity = 2
            html_v1_explicit = html_v1_explicit or explicit is _AS_HTML_V1
        elif mime in _WILDCARDS:
            targets = _WILDCARDS[mime]
            specificity = 0 if mime == "*/*" else 1
        else:
            continue
        for target in targets:
            current = best.get(target)
            # Among equally specific ranges (v1+json and latest+json) the more generous q wins.
            if current is None or (specificity, q) > current:
                best[target] = (specificity, q)

    choice: Negotiated | None = None
    choice_key = (0.0, 0)
    for target, (_, q) in best.items():
        if q <= 0:
            continue
        if target is _AS_JSON:
            rank = _RANK_JSON
        elif target is _AS_TEXT_HTML:
            rank = _RANK_TEXT_HTML
        else:
            rank = _RANK_HTML_V1 if html_v1_explicit else _RANK_HTML_V1_WILDCARD
        if (q, rank) > choice_key:
            choice, choice_key = target, (q, rank)
    return choice


def _parse_media_range(media_range: str) -> tuple[str, float] | None:
    mime, *params = media_range.split(";")
    mime = mime.strip().lower()
    kind, slash, subtype = mime.partition("/")
    if not (kind and slash and subtype):
        return None
    q = 1.0
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            value = value.strip()
            if not _QVALUE.fullmatch(value):
                # A weight we cannot read could mean "never"; dropping the range is safer than guessing.
                return None
            q = float(value)
            # Anything after q is an accept-extension, not a media type parameter; both are ignored.
            break
    return mime, q


@overload
def parse_response(
    content: bytes, content_type: str | None, url: str, *, project: Literal[True]
) -> ProjectPage: ...
@overload
def parse_response(
    content: bytes, content_type: str | None, url: str, *, project: Literal[False]
) -> ProjectList: ...
@overload
def parse_response(
    content: bytes, content_type: str | None, url: str, *, project: bool
) -> ProjectPage | ProjectList: ...
def parse_response(
    content: bytes, content_type: str | None, url: str, *, project: bool
) -> ProjectPage | ProjectList:
    """Parse an upstream's answer to a project page (``project=True``) or project list request.

    The Content-Type decides the parser. A missing one is read as HTML, since the oldest static indexes
    send none; a type that is neither JSON nor HTML raises `InvalidPage` rather than being guessed at.
    """
    mime, charset = _parse_content_type(content_type or "")
    if mime.startswith("application/vnd.pypi.simple."):
        version, _, syntax = mime.removeprefix("application/vnd.pypi.simple.").partition("+")
        # "latest" is not a valid response type, but the body is still something we can read.
        if version not in ("v1", "latest"):
            raise InvalidPage(url, f"unsupported API version in Content-Type {content_type!r}")
        if syntax == "json":
            return _json(content, url, project=project)
        if syntax == "html":
            return _html(content, url, charset, project=project)
    elif mime == "application/json":
        return _json(content, url, project=project)
    elif mime in ("", "text/html", "application/xhtml+xml"):
        return _html(content, url, charset, project=project)
    raise InvalidPage(url, f"unexpected Content-Type {content_type!r}")


def _parse_content_type(content_type: str) -> tuple[str, str | None]:
    mime, *params = content_type.split(";")
    charset = None
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip("\"'") or None
    return mime.strip().lower(), charset


def _json(content: bytes, url: str, *, project: bool) -> ProjectPage | ProjectList:
    return parse_project_page_json(content, url) if project else parse_project_list_json(content, url)


def _html(content: bytes, url: str, charset: str | None, *, project: bool) -> ProjectPage | ProjectList:
    if project:
        return parse_project_page_html(content, url, encoding=charset)
    return parse_project_list_html(content, url, encoding=charset)
