"""The simple index as a raw ASGI app: the hot path, kept close to the cost of raw ASGI.

A warm page is a dict lookup plus pre-rendered bytes; no routing framework, database or
parsing per request (DESIGN.md, speed budget). Everything that is not a simple page goes to
the next app.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, quote

from packaging.utils import canonicalize_name

from index_proxy.config import HardwareSpec
from index_proxy.machine import parse_profile_token
from index_proxy.merge import indexes_to_ask, owner_of
from index_proxy.metrics import Metrics
from index_proxy.pages import PageService, ProjectUnavailable, RenderedPage, Undecidable, View
from index_proxy.simple.negotiate import JSON_V1, Negotiated, PageFormat, negotiate

__all__ = ["SimpleIndexApp"]

log = logging.getLogger("index_proxy.simple")

Scope = dict[str, Any]
ASGIApp = Any

_VARY = (b"vary", b"Accept, Accept-Encoding")
_CACHE = (b"cache-control", b"public, max-age=60")


class SimpleIndexApp:
    def __init__(
        self,
        pages: PageService,
        metrics: Metrics,
        profiles: Mapping[str, HardwareSpec],
        default_profile: str | None,
        public_url: str | None,
        next_app: ASGIApp,
    ) -> None:
        self.pages = pages
        self.metrics = metrics
        self.next_app = next_app
        self.base = public_url.rstrip("/") + "/" if public_url else None
        default = profiles.get(default_profile) if default_profile else None
        self.plain_project = View(self.base or "../../", default, "plain")
        self.profiles = dict(profiles)
        # Every build of every project, whatever hardware it needs: for lock files, whose hashes
        # choose the file, so that a lock stays installable when analysis later changes the views.
        self.all_builds = View(self.base or "../../../", None, "all", index="*")
        self._views: dict[str, View] = {}

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.next_app(scope, receive, send)
            return
        path: str = scope["path"]
        if not path.startswith(("/simple/", "/env/", "/index/", "/all/")):
            await self.next_app(scope, receive, send)
            return
        try:
            await self._route(scope, send, path)
        except Exception:
            # Outside Starlette, so its error middleware does not see this: log it and answer 500.
            log.exception("simple page failed", extra={"path": path})
            await _send_error(send, 500, "internal error while serving this page; see the proxy's log")

    async def _route(self, scope: Scope, send: Any, path: str) -> None:
        if path.startswith("/simple/"):
            await self._serve(scope, send, path[8:], self.plain_project, "/simple/")
            return
        if path.startswith("/all/"):
            if not path.startswith("/all/simple/"):
                await _send_error(send, 404, "the all-builds index is at /all/simple/")
                return
            await self._serve(scope, send, path[12:], self.all_builds, "/all/simple/")
            return
        kind, _, rest = path[1:].partition("/")
        name, _, rest = rest.partition("/")
        view = self._env_view(name) if kind == "env" else self._index_view(name)
        if view is None:
            if kind == "env":
                message = (
                    f"no profile {name!r}: name one from the config's profiles: or encode one, "
                    "e.g. /env/x86_64_v3+avx2+cu121/simple/"
                )
            else:
                message = f"no index named {name!r}"
            await _send_error(send, 404, message)
            return
        if not rest.startswith("simple/"):
            await _send_error(send, 404, f"this view's index is at /{kind}/{name}/simple/")
            return
        await self._serve(scope, send, rest[7:], view, f"/{kind}/{name}/simple/")

    def _env_view(self, name: str) -> View | None:
        view = self._views.get(f"env:{name}")
        if view is None:
            spec = self.profiles.get(name) or parse_profile_token(name)
            if spec is None:
                return None
            if len(self._views) > 10_000:
                # Each distinct machine is one view; forget them all rather than refuse new ones.
                self._views.clear()
            view = self._views[f"env:{name}"] = View(
                self.base or "../../../../", spec, f"env:{name}", machine=True
            )
        return view

    def _index_view(self, name: str) -> View | None:
        view = self._views.get(f"index:{name}")
        if view is None:
            if name not in self.pages.priority:
                return None
            view = self._views[f"index:{name}"] = View(
                self.base or "../../../../", None, f"index:{name}", index=name
            )
        return view

    async def _serve(self, scope: Scope, send: Any, rest: str, view: View, base_path: str) -> None:
        method = scope["method"]
        if method not in ("GET", "HEAD"):
            await _send_error(
                send, 405, "simple pages are read with GET or HEAD", extra=[(b"allow", b"GET, HEAD")]
            )
            return
        accept = accept_encoding = if_none_match = None
        for key, value in scope["headers"]:
            if key == b"accept":
                accept = value.decode("latin-1")
            elif key == b"accept-encoding":
                accept_encoding = value
            elif key == b"if-none-match":
                if_none_match = value
        query = scope.get("query_string", b"")
        format_param = dict(parse_qsl(query.decode("latin-1"))).get("format") if query else None
        negotiated = negotiate(accept, format_param)
        if negotiated is None:
            self.metrics.hit(406, "none")
            await _send_error(
                send,
                406,
                f"none of the types in Accept: {accept!r} is served; ask for {JSON_V1}, "
                "application/vnd.pypi.simple.v1+html or text/html",
            )
            return
        if rest == "":
            rendered = self.pages.cached_list(negotiated.format)
            if rendered is None:
                await self.pages.load_list()
                rendered = self.pages.cached_list(negotiated.format)
            assert rendered is not None
        else:
            rendered = await self._project_page(send, rest, view, negotiated, base_path, query)
            if rendered is None:
                return
        await self._send_page(send, method, rendered, negotiated, accept_encoding, if_none_match)

    async def _project_page(
        self, send: Any, rest: str, view: View, negotiated: Negotiated, base_path: str, query: bytes
    ) -> RenderedPage | None:
        raw = rest[:-1] if rest.endswith("/") else rest
        if "/" in raw or not raw:
            await _send_error(send, 404, f"no such page; project pages live at {base_path}<project>/")
            return None
        project = canonicalize_name(raw)
        if project != raw or not rest.endswith("/"):
            location = f"{base_path}{quote(project)}/" + (f"?{query.decode('latin-1')}" if query else "")
            await send(
                {
                    "type": "http.response.start",
                    "status": 301,
                    "headers": [(b"location", location.encode()), (b"content-length", b"0")],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return None
        rendered = self.pages.cached_project(project, view, negotiated.format)
        if rendered is not None:
            return rendered
        try:
            merged = await self.pages.load_project(project)
        except (Undecidable, ProjectUnavailable) as error:
            self.metrics.hit(502, negotiated.format.value)
            await _send_error(send, 502, str(error))
            return None
        if merged is None:
            self.metrics.hit(404, negotiated.format.value)
            await _send_error(send, 404, self._not_found_message(project))
            return None
        return self.pages.cached_project(project, view, negotiated.format)

    def _not_found_message(self, project: str) -> str:
        owner = owner_of(self.pages.indexes, project)
        if owner is not None:
            return (
                f"project {project!r} is owned by index {owner.name!r} (owns: {', '.join(owner.owns)}), "
                "which does not have it; no other index may serve it"
            )
        asked = ", ".join(index.name for index in indexes_to_ask(self.pages.indexes, project))
        return f"project {project!r} is not on any configured index (asked: {asked})"

    async def _send_page(
        self,
        send: Any,
        method: str,
        rendered: RenderedPage,
        negotiated: Negotiated,
        accept_encoding: bytes | None,
        if_none_match: bytes | None,
    ) -> None:
        gzipped = accept_encoding is not None and _accepts_gzip(accept_encoding)
        etag = rendered.gzip_etag if gzipped else rendered.etag
        headers = [(b"content-type", _content_type(negotiated)), (b"etag", etag), _VARY, _CACHE]
        # Weak comparison (RFC 9110): the gzip and identity forms are the same page.
        if if_none_match is not None and (
            _etag_matches(if_none_match, rendered.etag) or _etag_matches(if_none_match, rendered.gzip_etag)
        ):
            self.metrics.hit(304, negotiated.format.value)
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        body = rendered.gzip_body if gzipped else rendered.body
        if gzipped:
            headers.append((b"content-encoding", b"gzip"))
        headers.append((b"content-length", str(len(body)).encode()))
        self.metrics.hit(200, negotiated.format.value)
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})


_CONTENT_TYPES: dict[str, bytes] = {}


def _content_type(negotiated: Negotiated) -> bytes:
    value = _CONTENT_TYPES.get(negotiated.content_type)
    if value is None:
        suffix = "; charset=utf-8" if negotiated.format is PageFormat.HTML else ""
        value = _CONTENT_TYPES[negotiated.content_type] = (negotiated.content_type + suffix).encode()
    return value


def _accepts_gzip(accept_encoding: bytes) -> bool:
    for item in accept_encoding.split(b","):
        coding, _, params = item.strip().partition(b";")
        if coding.strip() in (b"gzip", b"*"):
            params = params.replace(b" ", b"")
            return not (params.startswith(b"q=0") and params.strip(b"q=0.") == b"")
    return False


def _etag_matches(if_none_match: bytes, etag: bytes) -> bool:
    if if_none_match.strip() == b"*":
        return True
    for candidate in if_none_match.split(b","):
        candidate = candidate.strip()
        if candidate.startswith(b"W/"):
            candidate = candidate[2:]
        if candidate == etag:
            return True
    return False


async def _send_error(
    send: Any, status: int, message: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps({"error": message, "status": status}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
    await send({"type": "http.response.body", "body": body})
