"""Real upstream simple indexes on loopback, serving a directory of distribution files.

Each server is a ``ThreadingHTTPServer`` speaking HTTP/1.1 with keep-alive, because the proxy under
test pools connections: ``stop()`` therefore also cuts open connections, so a stopped upstream is
really gone (connection refused / reset) rather than still answering on a pooled socket.
"""

from __future__ import annotations

import contextlib
import email.parser
import hashlib
import html
import json
import re
import shutil
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, quote, unquote, urlsplit

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version

from .wheels import read_wheel_metadata

__all__ = ["FolderIndex", "RecordedRequest", "UpstreamServer", "parse_dist_filename"]

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
_JSON_ACCEPTABLE = {JSON_TYPE, "application/vnd.pypi.simple.latest+json"}
_HTML_ACCEPTABLE = {
    "text/html",
    "application/vnd.pypi.simple.v1+html",
    "application/vnd.pypi.simple.latest+html",
}
_WILDCARDS = {"*/*", "text/*", "application/*"}


def parse_dist_filename(filename: str) -> tuple[NormalizedName, Version] | None:
    """(normalized project, version) for a wheel or sdist filename, None for anything else."""
    try:
        if filename.endswith(".whl"):
            name, version, _build, _tags = parse_wheel_filename(filename)
            return name, version
        if filename.endswith((".tar.gz", ".zip")):
            return parse_sdist_filename(filename)
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None
    return None


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    method: str
    path: str
    headers: Mapping[str, str]

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return None


@dataclass(frozen=True, slots=True)
class _DistFile:
    filename: str
    project: NormalizedName
    version: Version
    sha256: str
    size: int
    upload_time: str
    requires_python: str | None
    metadata: bytes | None


@dataclass(slots=True)
class FolderIndex:
    """A local folder index (``kind: folder``): nothing serves it, the proxy reads the directory."""

    root: Path

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return str(self.root)

    def add(self, path: Path) -> None:
        shutil.copy2(path, self.root / path.name)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # A restarted upstream must get its old port back even while old sockets sit in TIME_WAIT.
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], owner: UpstreamServer) -> None:
        self.owner = owner
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)  # type: ignore[arg-type]

    def shutdown_request(self, request: socket.socket) -> None:  # type: ignore[override]
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def cut_connections(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:
        self.server.owner._handle(self, head=False)

    def do_HEAD(self) -> None:
        self.server.owner._handle(self, head=True)

    def log_message(self, format: str, *args: object) -> None:
        # The request log is kept structurally in UpstreamServer.requests; stderr noise helps no one.
        pass


def _accept_q(accept: str | None) -> tuple[float, float]:
    """(best q for a JSON type, best q for an HTML type or wildcard) from an Accept header."""
    json_q = 0.0
    html_q = 0.0
    if not accept:
        return json_q, 1.0
    for part in accept.split(","):
        pieces = [p.strip() for p in part.split(";")]
        media = pieces[0].lower()
        q = 1.0
        for param in pieces[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if media in _JSON_ACCEPTABLE:
            json_q = max(json_q, q)
        elif media in _HTML_ACCEPTABLE or media in _WILDCARDS:
            html_q = max(html_q, q)
    return json_q, html_q


def _parse_range(header: str, size: int) -> tuple[int, int] | Literal["unsatisfiable"] | None:
    """Inclusive (start, end) for one ``bytes=`` range; None means "ignore, send everything"."""
    match = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header)
    if match is None:
        # Multiple ranges or another unit: RFC 9110 lets a server answer 200 with the full body.
        return None
    first, last = match.group(1), match.group(2)
    if not first and not last:
        return None
    if not first:
        suffix = int(last)
        if suffix == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - suffix), size - 1
    start = int(first)
    if last and int(last) < start:
        # Syntactically invalid (last < first): RFC 9110 says ignore the header.
        return None
    if start >= size:
        return "unsatisfiable"
    end = int(last) if last else size - 1
    return start, min(end, size - 1)


class UpstreamServer:
    """A PEP 503 (``style="html"``) or PEP 691 (``style="json"``) index of the files in ``root``."""

    def __init__(
        self,
        root: Path,
        *,
        style: Literal["html", "json"],
        range_support: bool,
        metadata: bool,
        etag: bool = True,
    ) -> None:
        if style not in ("html", "json"):
            raise ValueError(f"style must be 'html' or 'json', not {style!r}")
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.style = style
        self.range_support = range_support
        self.metadata = metadata
        self.etag = etag
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._tampered: dict[str, bytes] = {}
        self._yanked: dict[str, str | bool] = {}
        self._delay = 0.0
        self._stall_after: int | None = None
        self._stall_released = threading.Event()
        self._port: int | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        # Hashing every file on every page request would make big directories slow; key by stat.
        # Handler threads share it unlocked: a race only computes the same entry twice.
        self._scan_cache: dict[tuple[str, int, int], _DistFile] = {}

    # -- lifecycle ---------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("upstream server was never started")
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base_url}/simple/"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> UpstreamServer:
        if self._server is not None:
            return self
        server = _Server(("127.0.0.1", self._port or 0), self)
        self._port = server.server_address[1]
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"upstream-{self._port}",
            daemon=True,
        )
        thread.start()
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._server = self._thread = None
        server.shutdown()
        server.cut_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=10)

    def __enter__(self) -> UpstreamServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- content control ---------------------------------------------------------------------------

    def add(self, path: Path) -> None:
        shutil.copy2(path, self.root / path.name)

    def remove(self, filename: str) -> None:
        (self.root / filename).unlink()

    def tamper(self, filename: str) -> None:
        """Serve different bytes (same length) for ``filename``; pages keep the original sha256."""
        data = bytearray((self.root / filename).read_bytes())
        if not data:
            raise ValueError(f"cannot tamper with empty file {filename}")
        # Same size on purpose: a proxy must catch this by hash, not by a Content-Length mismatch.
        data[len(data) // 2] ^= 0xFF
        with self._lock:
            self._tampered[filename] = bytes(data)

    def yank(self, filename: str, reason: str | bool = True) -> None:
        with self._lock:
            self._yanked[filename] = reason

    def set_delay(self, seconds: float) -> None:
        with self._lock:
            self._delay = seconds

    def stall_files(self, after: int) -> None:
        """Send only the first ``after`` bytes of each whole file, then wait for :meth:`release_stall`.

        A client is then caught in the middle of a download, with part of the body received.
        """
        with self._lock:
            self._stall_after = after
            self._stall_released.clear()

    def release_stall(self) -> None:
        """Let stalled responses finish (to whoever still listens); later ones are not stalled."""
        with self._lock:
            self._stall_after = None
            self._stall_released.set()

    # -- request log -------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def count(self, method: str = "GET", path_prefix: str = "") -> int:
        with self._lock:
            return sum(1 for r in self._requests if r.method == method and r.path.startswith(path_prefix))

    def reset_log(self) -> None:
        with self._lock:
            self._requests.clear()

    # -- content model -----------------------------------------------------------------------------

    def _scan(self) -> list[_DistFile]:
        files: list[_DistFile] = []
        for path in sorted(self.root.iterdir()):
            parsed = parse_dist_filename(path.name)
            if parsed is None or not path.is_file():
                continue
            st = path.stat()
            key = (path.name, st.st_size, st.st_mtime_ns)
            cached = self._scan_cache.get(key)
            if cached is None:
                cached = self._describe(path, st.st_size, st.st_mtime, *parsed)
                self._scan_cache[key] = cached
            files.append(cached)
        return files

    @staticmethod
    def _describe(
        path: Path, size: int, mtime: float, project: NormalizedName, version: Version
    ) -> _DistFile:
        metadata: bytes | None = None
        requires_python: str | None = None
        if path.name.endswith(".whl"):
            metadata = read_wheel_metadata(path)
            parsed = email.parser.BytesParser().parsebytes(metadata, headersonly=True)
            requires_python = parsed.get("Requires-Python")
        upload = datetime.fromtimestamp(mtime, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return _DistFile(
            filename=path.name,
            project=project,
            version=version,
            sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
            size=size,
            upload_time=upload,
            requires_python=requires_python,
            metadata=metadata,
        )

    # -- rendering ---------------------------------------------------------------------------------

    def _project_list(self, as_json: bool) -> bytes:
        names = sorted({f.project for f in self._scan()})
        if as_json:
            doc = {"meta": {"api-version": "1.1"}, "projects": [{"name": n} for n in names]}
            return json.dumps(doc, indent=1).encode()
        links = "\n".join(f'<a href="{quote(n)}/">{html.escape(n)}</a><br/>' for n in names)
        return (
            f"<!DOCTYPE html>\n<html><head>{self._html_meta()}<title>Simple index</title></head>\n"
            f"<body>\n{links}\n</body></html>\n"
        ).encode()

    def _html_meta(self) -> str:
        # The plain-HTML style mimics a legacy PEP 503 server, which declares no repository version.
        if self.style == "html":
            return ""
        return '<meta name="pypi:repository-version" content="1.1">'

    def _project_page(self, project: NormalizedName, files: list[_DistFile], as_json: bool) -> bytes:
        with self._lock:
            yanked = dict(self._yanked)
        if as_json:
            entries: list[dict[str, object]] = []
            for f in files:
                entry: dict[str, object] = {
                    "filename": f.filename,
                    "url": f"../../files/{quote(f.filename)}",
                    "hashes": {"sha256": f.sha256},
                    "size": f.size,
                    "upload-time": f.upload_time,
                }
                if f.requires_python is not None:
                    entry["requires-python"] = f.requires_python
                if self.metadata and f.metadata is not None:
                    entry["core-metadata"] = {"sha256": hashlib.sha256(f.metadata).hexdigest()}
                if f.filename in yanked:
                    entry["yanked"] = yanked[f.filename]
                entries.append(entry)
            versions = sorted({f.version for f in files})
            doc = {
                "meta": {"api-version": "1.1"},
                "name": project,
                "versions": [str(v) for v in versions],
                "files": entries,
            }
            return json.dumps(doc, indent=1).encode()
        anchors: list[str] = []
        for f in files:
            attrs = [f'href="../../files/{quote(f.filename)}#sha256={f.sha256}"']
            if f.requires_python is not None:
                attrs.append(f'data-requires-python="{html.escape(f.requires_python, quote=True)}"')
            if self.metadata and f.metadata is not None:
                attrs.append(f'data-core-metadata="sha256={hashlib.sha256(f.metadata).hexdigest()}"')
            if f.filename in yanked:
                reason = yanked[f.filename]
                text = reason if isinstance(reason, str) else ""
                attrs.append(f'data-yanked="{html.escape(text, quote=True)}"')
            anchors.append(f"<a {' '.join(attrs)}>{html.escape(f.filename)}</a><br/>")
        body = "\n".join(anchors)
        return (
            f"<!DOCTYPE html>\n<html><head>{self._html_meta()}<title>Links for {project}</title></head>\n"
            f"<body>\n<h1>Links for {project}</h1>\n{body}\n</body></html>\n"
        ).encode()

    # -- HTTP --------------------------------------------------------------------------------------

    def _handle(self, req: _Handler, *, head: bool) -> None:
        headers = {k: v for k, v in req.headers.items()}
        with self._lock:
            self._requests.append(RecordedRequest(req.command, req.path, headers))
            delay = self._delay
        if delay > 0:
            time.sleep(delay)
        try:
            self._route(req, head=head)
        except OSError:
            # The client (or stop()) went away mid-response; nothing left to tell anyone.
            req.close_connection = True

    def _route(self, req: _Handler, *, head: bool) -> None:
        split = urlsplit(req.path)
        path = unquote(split.path)
        query = parse_qs(split.query)
        if path == "/simple":
            self._send(req, 301, {"Location": "/simple/"}, b"", head)
        elif path == "/simple/":
            self._serve_page(req, None, query, head)
        elif path.startswith("/simple/"):
            name = path[len("/simple/") :]
            if not path.endswith("/"):
                self._send(req, 301, {"Location": f"/simple/{quote(name)}/"}, b"", head)
                return
            name = name.rstrip("/")
            if "/" in name or not name:
                self._not_found(req, head)
                return
            self._serve_page(req, canonicalize_name(name), query, head)
        elif path.startswith("/files/"):
            self._serve_file(req, path[len("/files/") :], head)
        else:
            self._not_found(req, head)

    def _negotiate_json(self, req: _Handler, query: Mapping[str, list[str]]) -> bool:
        if self.style == "html":
            return False
        fmt = query.get("format")
        if fmt:
            return fmt[0] in _JSON_ACCEPTABLE
        json_q, html_q = _accept_q(req.headers.get("Accept"))
        return json_q > 0 and json_q >= html_q

    def _serve_page(
        self, req: _Handler, project: NormalizedName | None, query: Mapping[str, list[str]], head: bool
    ) -> None:
        as_json = self._negotiate_json(req, query)
        if project is None:
            body = self._project_list(as_json)
        else:
            files = [f for f in self._scan() if f.project == project]
            if not files:
                self._not_found(req, head)
                return
            body = self._project_page(project, files, as_json)
        headers = {"Content-Type": JSON_TYPE if as_json else "text/html; charset=utf-8"}
        if self.style == "json":
            headers["Vary"] = "Accept"
        if self.etag:
            etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
            headers["ETag"] = etag
            if self._etag_matches(req.headers.get("If-None-Match"), etag):
                self._send(req, 304, headers, b"", head=True)
                return
        self._send(req, 200, headers, body, head)

    @staticmethod
    def _etag_matches(if_none_match: str | None, etag: str) -> bool:
        if not if_none_match:
            return False
        for candidate in if_none_match.split(","):
            tag = candidate.strip()
            if tag == "*":
                return True
            if tag.startswith("W/"):
                tag = tag[2:]
            if tag == etag:
                return True
        return False

    def _serve_file(self, req: _Handler, name: str, head: bool) -> None:
        if "/" in name or not name:
            self._not_found(req, head)
            return
        if name.endswith(".metadata"):
            dist = self.root / name[: -len(".metadata")]
            if not self.metadata or not dist.name.endswith(".whl") or not dist.is_file():
                self._not_found(req, head)
                return
            self._send_bytes(req, read_wheel_metadata(dist), "text/plain; charset=utf-8", head)
            return
        path = self.root / name
        if not path.is_file():
            self._not_found(req, head)
            return
        with self._lock:
            data = self._tampered.get(name)
        if data is None:
            data = path.read_bytes()
        ctype = "application/zip" if name.endswith(".whl") else "application/octet-stream"
        self._send_bytes(req, data, ctype, head)

    def _send_bytes(self, req: _Handler, data: bytes, ctype: str, head: bool) -> None:
        headers = {"Content-Type": ctype}
        if not self.range_support:
            self._send_whole(req, headers, data, head)
            return
        headers["Accept-Ranges"] = "bytes"
        range_header = req.headers.get("Range")
        parsed = _parse_range(range_header, len(data)) if range_header else None
        if parsed == "unsatisfiable":
            headers["Content-Range"] = f"bytes */{len(data)}"
            self._send(req, 416, headers, b"", head)
        elif parsed is None:
            self._send_whole(req, headers, data, head)
        else:
            start, end = parsed
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            self._send(req, 206, headers, data[start : end + 1], head)

    def _send_whole(self, req: _Handler, headers: Mapping[str, str], data: bytes, head: bool) -> None:
        with self._lock:
            stall_after = self._stall_after
        if stall_after is None or head:
            self._send(req, 200, headers, data, head)
            return
        req.send_response(200)
        for key, value in headers.items():
            req.send_header(key, value)
        req.send_header("Content-Length", str(len(data)))
        req.end_headers()
        req.wfile.write(data[:stall_after])
        req.wfile.flush()
        self._stall_released.wait(timeout=120)
        req.wfile.write(data[stall_after:])
        req.wfile.flush()

    def _not_found(self, req: _Handler, head: bool) -> None:
        self._send(req, 404, {"Content-Type": "text/plain; charset=utf-8"}, b"not found\n", head)

    @staticmethod
    def _send(req: _Handler, status: int, headers: Mapping[str, str], body: bytes, head: bool) -> None:
        req.send_response(status)
        for key, value in headers.items():
            req.send_header(key, value)
        if status != 304:
            req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        if not head and status != 304 and body:
            req.wfile.write(body)
        req.wfile.flush()
