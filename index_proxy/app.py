"""The ASGI application: wiring of config, storage, upstreams and services, and the HTTP surface."""

from __future__ import annotations

import contextlib
import hmac
import logging
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.schemas import SchemaGenerator

from index_proxy import __version__
from index_proxy.config import Config, IndexConfig
from index_proxy.files import FileService, MetadataUnavailable, UnknownFile
from index_proxy.metrics import Metrics
from index_proxy.pages import PageService
from index_proxy.simple_view import SimpleIndexApp
from index_proxy.status import UpstreamHealth
from index_proxy.store.blobs import DigestMismatch, FolderBlobStore
from index_proxy.store.db import Database, FileRecord
from index_proxy.upstream_response import UpstreamFileResponse
from index_proxy.upstreams.base import Upstream, UpstreamFileError
from index_proxy.upstreams.folder import FolderUpstream
from index_proxy.upstreams.http import HttpUpstream, make_http_client
from index_proxy.upstreams.pip_index import pip_index_url

__all__ = ["Services", "create_app"]

log = logging.getLogger("index_proxy.app")

_IMMUTABLE = "public, max-age=31536000, immutable"


@dataclass
class Services:
    config: Config
    database: Database
    blobs: FolderBlobStore
    upstreams: Mapping[str, Upstream]
    pages: PageService
    files: FileService
    metrics: Metrics
    health: UpstreamHealth


def _make_upstream(index: IndexConfig, client: Any) -> Upstream:
    if index.kind == "folder":
        return FolderUpstream(index)
    url = pip_index_url() if index.url == "pip" else index.url
    return HttpUpstream(index, url, client)


class _Lazy:
    """The services exist only inside the lifespan; routes reach them through here."""

    services: Services | None = None

    def get(self) -> Services:
        if self.services is None:
            raise RuntimeError("the app is not started (lifespan has not run)")
        return self.services


def create_app(config: Config) -> Any:
    holder = _Lazy()
    metrics = Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        database = Database(config.storage.database)
        await database.migrate()
        client = make_http_client()
        upstreams = {index.name: _make_upstream(index, client) for index in config.indexes}
        health = UpstreamHealth()
        for index in config.indexes:
            health.status(index.name)
        blobs = FolderBlobStore(config.storage.blobs)
        pages = PageService(config, upstreams, database, metrics, health)
        files = FileService(upstreams, database, blobs, pages, metrics)
        holder.services = Services(config, database, blobs, upstreams, pages, files, metrics, health)
        fast.pages = pages
        log.info(
            "index-proxy started", extra={"indexes": [i.name for i in config.indexes], "version": __version__}
        )
        try:
            yield
        finally:
            await client.aclose()
            await database.close()

    routes = [
        Route("/", _root, methods=["GET"]),
        Route("/healthz", _healthz, methods=["GET"]),
        Route("/readyz", _readyz, methods=["GET"]),
        Route("/metrics", _metrics, methods=["GET"]),
        Route("/openapi.json", _openapi, methods=["GET"], include_in_schema=False),
        Route("/files/{file_id}/{filename}", _file, methods=["GET", "HEAD"]),
        Route("/api/v1/admin/guard-events", _guard_events, methods=["GET"]),
        Route("/api/v1/admin/indexes", _indexes, methods=["GET"]),
        Route("/api/v1/admin/refresh", _refresh, methods=["POST"]),
    ]
    starlette = Starlette(routes=routes, lifespan=lifespan)
    starlette.state.holder = holder
    starlette.state.metrics = metrics
    fast = SimpleIndexApp(
        pages=None,  # type: ignore[arg-type]  # set by the lifespan
        metrics=metrics,
        profiles=config.profiles,
        default_profile=config.server.default_profile,
        public_url=config.server.public_url,
        next_app=starlette,
    )
    return fast


def _services(request: Request) -> Services:
    return request.app.state.holder.get()  # type: ignore[no-any-return]


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message, "status": status}, status_code=status)


async def _root(request: Request) -> Response:
    return JSONResponse({"name": "index-proxy", "version": __version__, "simple": "/simple/"})


async def _healthz(request: Request) -> Response:
    """
    summary: Liveness
    responses:
      200: {description: the process is serving}
    """
    return JSONResponse({"status": "ok"})


async def _readyz(request: Request) -> Response:
    """
    summary: Readiness, with each upstream's health
    responses:
      200: {description: ready; upstreams that fail are listed as degraded}
      503: {description: the database is unreachable}
    """
    services = _services(request)
    try:
        await services.database.ping()
    except Exception as error:  # any driver error means not ready
        return JSONResponse({"status": "unready", "database": str(error)}, status_code=503)
    upstreams = services.health.report()
    degraded = [name for name, status in upstreams.items() if not status["ok"]]
    return JSONResponse(
        {
            "status": "degraded" if degraded else "ok",
            "database": "ok",
            "degraded": degraded,
            "upstreams": upstreams,
        }
    )


async def _metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


_schemas = SchemaGenerator({"openapi": "3.0.0", "info": {"title": "index-proxy", "version": __version__}})


async def _openapi(request: Request) -> Response:
    schema = _schemas.get_schema(routes=request.app.routes)
    schema["paths"]["/simple/{project}/"] = {
        "get": {
            "summary": "Merged project page, PEP 503 HTML or PEP 691 JSON by Accept (or ?format=)",
            "responses": {
                "200": {"description": "the page"},
                "301": {"description": "to the normalized name"},
                "304": {"description": "unchanged (If-None-Match)"},
                "404": {"description": "on no index"},
                "406": {"description": "no acceptable format"},
                "502": {"description": "upstreams failed"},
            },
        }
    }
    schema["paths"]["/simple/"] = {
        "get": {"summary": "Merged project list", "responses": {"200": {"description": "list"}}}
    }
    return JSONResponse(schema)


# -- files ----------------------------------------------------------------------------------
async def _file(request: Request) -> Response:
    """
    summary: A distribution file (or its PEP 658 core metadata when the name ends in .metadata)
    responses:
      200: {description: the bytes, verified against the listed sha256}
      206: {description: a byte range}
      404: {description: unknown file}
      502: {description: the upstream failed or sent bytes that do not match the listed hash}
    """
    services = _services(request)
    file_id = request.path_params["file_id"]
    filename = request.path_params["filename"]
    is_metadata = filename.endswith(".metadata")
    try:
        record = await services.files.lookup(
            file_id, filename.removesuffix(".metadata") if is_metadata else filename
        )
    except UnknownFile as error:
        return _error(404, str(error))
    if is_metadata:
        return await _core_metadata(services, record)
    try:
        return await _file_response(request, services, record)
    except DigestMismatch as error:
        return _error(
            502, f"{record.filename} from index {record.index_name!r}: {error}; the file was not kept"
        )
    except UpstreamFileError as error:
        return _error(502, f"{record.filename} from index {record.index_name!r}: {error.reason}")


async def _file_response(request: Request, services: Services, record: FileRecord) -> Response:
    digest = await services.files.stored_sha256(record)
    if digest is None and await services.files.wait_for_other_download(record):
        record = await services.files.lookup(record.file_id, record.filename)
        digest = await services.files.stored_sha256(record)
    if digest is None:
        if request.method == "HEAD" and record.size is not None:
            return Response(
                headers={
                    "content-length": str(record.size),
                    "accept-ranges": "bytes",
                    "content-type": "application/octet-stream",
                }
            )
        if request.method == "HEAD" or "range" in request.headers:
            # A range of a file we do not hold: fetch it whole (verified), then serve the range.
            digest = await services.files.download(record)
        else:
            return UpstreamFileResponse(services.files.stream_from_upstream(record), record)  # type: ignore[return-value]
    path = services.blobs.local_path(digest)
    assert path is not None
    services.metrics.files.labels("cache").inc()
    return FileResponse(
        path,
        media_type="application/octet-stream",
        headers={"etag": f'"{digest}"', "cache-control": _IMMUTABLE},
    )


async def _core_metadata(services: Services, record: FileRecord) -> Response:
    try:
        data = await services.files.core_metadata(record)
    except MetadataUnavailable as error:
        return _error(404, f"no core metadata for {record.filename}: {error}")
    except UpstreamFileError as error:
        return _error(502, f"core metadata of {record.filename}: {error.reason}")
    return Response(
        data,
        media_type="application/octet-stream",
        headers={"cache-control": _IMMUTABLE, "etag": f'"{_sha256(data)}"'},
    )


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


# -- admin ----------------------------------------------------------------------------------
def _authorized(request: Request) -> Response | None:
    token = _services(request).config.server.admin_token
    if not token:
        return _error(403, "the admin API is off: set server.admin_token or INDEX_PROXY_ADMIN_TOKEN")
    given = request.headers.get("authorization", "")
    scheme, _, value = given.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
        return JSONResponse(
            {"error": "admin endpoints need 'Authorization: Bearer <server.admin_token>'", "status": 401},
            status_code=401,
            headers={"www-authenticate": "Bearer"},
        )
    return None


async def _guard_events(request: Request) -> Response:
    """
    summary: Files the merge dropped (dependency-confusion guard, hash conflicts, tampered files)
    parameters:
      - {name: project, in: query, required: false, schema: {type: string}}
      - {name: limit, in: query, required: false, schema: {type: integer}}
    responses:
      200: {description: the events, newest first}
      401: {description: missing or wrong bearer token}
    """
    if (denied := _authorized(request)) is not None:
        return denied
    project = request.query_params.get("project")
    try:
        limit = int(request.query_params.get("limit", "1000"))
    except ValueError:
        return _error(400, "limit must be an integer")
    events = await _services(request).database.list_guard_events(project=project, limit=limit)
    return JSONResponse(
        {
            "events": [
                {
                    "kind": event.kind,
                    "project": event.project,
                    "filename": event.filename,
                    "index": event.index_name,
                    "kept_index": event.kept_index,
                    "detail": event.detail,
                    "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(event.at)),
                }
                for event in events
            ]
        }
    )


async def _indexes(request: Request) -> Response:
    """
    summary: The configured indexes, in priority order, with their health
    responses:
      200: {description: indexes}
    """
    if (denied := _authorized(request)) is not None:
        return denied
    services = _services(request)
    report = services.health.report()
    return JSONResponse(
        {
            "indexes": [
                {
                    "name": index.name,
                    "kind": index.kind,
                    "url": index.url,
                    "owns": list(index.owns),
                    "only": None if index.only is None else list(index.only),
                    "hardware": None
                    if index.hardware is None
                    else {
                        "cpu_features": list(index.hardware.cpu_features),
                        "cpu_level": index.hardware.cpu_level,
                        "cuda": index.hardware.cuda,
                    },
                    "health": report.get(index.name),
                }
                for index in services.config.indexes
            ]
        }
    )


async def _refresh(request: Request) -> Response:
    """
    summary: Drop cached merged pages so the next request asks the upstreams
    parameters:
      - {name: project, in: query, required: false, schema: {type: string}}
    responses:
      200: {description: done}
    """
    if (denied := _authorized(request)) is not None:
        return denied
    project = request.query_params.get("project")
    _services(request).pages.invalidate(project)
    return JSONResponse({"refreshed": project or "*"})
