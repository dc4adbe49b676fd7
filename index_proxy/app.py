"""The ASGI application: the HTTP surface over the services (pages, files, analysis, admin)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from packaging.utils import canonicalize_name
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.schemas import SchemaGenerator

from index_proxy import __version__
from index_proxy.analysis import AnalysisWorker, Monitor, monitor_needed
from index_proxy.api_analysis import analysis_problems, analysis_queue, file_analysis, new_files_hook
from index_proxy.api_resolve import resolve_request
from index_proxy.blob_response import blob_response
from index_proxy.config import Config
from index_proxy.files import MetadataUnavailable, UnknownFile
from index_proxy.metrics import Metrics
from index_proxy.services import Services, open_services
from index_proxy.simple_view import SimpleIndexApp
from index_proxy.store.blobs import BlobStoreUnavailable, DigestMismatch
from index_proxy.store.db import FileRecord
from index_proxy.upstream_response import UpstreamFileResponse
from index_proxy.upstreams.base import UpstreamFileError

__all__ = ["create_app"]

log = logging.getLogger("index_proxy.app")

_IMMUTABLE = "public, max-age=31536000, immutable"


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
        async with open_services(config, metrics) as services:
            holder.services = services
            fast.pages = services.pages
            stop = asyncio.Event()
            background = [
                asyncio.create_task(AnalysisWorker(services).run(stop))
                for _ in range(config.server.analysis_workers)
            ]
            if monitor_needed(config):
                background.append(asyncio.create_task(Monitor(services).run(stop)))
            log.info(
                "index-proxy started",
                extra={
                    "indexes": [i.name for i in config.indexes],
                    "version": __version__,
                    "analysis_workers": config.server.analysis_workers,
                },
            )
            try:
                yield
            finally:
                stop.set()
                await asyncio.gather(*background, return_exceptions=True)

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
        Route("/api/v1/admin/analysis/queue", _analysis_queue, methods=["GET"]),
        Route("/api/v1/admin/analysis/problems", _analysis_problems, methods=["GET"]),
        Route("/api/v1/analysis/{project}/{version}", _analysis, methods=["GET"]),
        Route("/api/v1/hooks/new-files", _new_files_hook, methods=["POST"]),
        Route("/api/v1/resolve", _resolve, methods=["POST"]),
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
    if is_metadata:
        cached = services.files.cached_metadata(file_id, filename.removesuffix(".metadata"))
        if cached is not None:
            services.metrics.metadata.labels("memory").inc()
            return _metadata_response(*cached)
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
    except BlobStoreUnavailable as error:
        log.error("blob store failed", extra={"file": record.filename, "error": str(error)})
        return _error(503, f"{record.filename}: the blob store failed ({error}); try again later")


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
    etag = f'"{digest}"'
    if etag in [
        tag.strip().removeprefix("W/") for tag in request.headers.get("if-none-match", "").split(",")
    ]:
        return Response(status_code=304, headers={"etag": etag, "cache-control": _IMMUTABLE})
    headers = {"etag": etag, "cache-control": _IMMUTABLE}
    services.metrics.files.labels("cache").inc()
    path = services.blobs.local_path(digest)
    if path is not None:
        return FileResponse(path, media_type="application/octet-stream", headers=headers)
    size = await services.blobs.size(digest)
    if size is None:
        raise BlobStoreUnavailable(f"blob {digest} vanished from {services.blobs.location}")
    return blob_response(request, services.blobs, digest, size, headers)


async def _core_metadata(services: Services, record: FileRecord) -> Response:
    try:
        data = await services.files.core_metadata(record)
    except DigestMismatch as error:
        return _error(502, f"{record.filename} from index {record.index_name!r}: {error}; not kept")
    except MetadataUnavailable as error:
        return _error(404, f"no core metadata for {record.filename}: {error}")
    except BlobStoreUnavailable as error:
        log.error("blob store failed", extra={"file": record.filename, "error": str(error)})
        return _error(503, f"core metadata of {record.filename}: the blob store failed ({error})")
    except UpstreamFileError as error:
        return _error(502, f"core metadata of {record.filename}: {error.reason}")
    return _metadata_response(data)


def _metadata_response(data: bytes, sha256: str | None = None) -> Response:
    return Response(
        data,
        media_type="application/octet-stream",
        headers={"cache-control": _IMMUTABLE, "etag": f'"{sha256 or _sha256(data)}"'},
    )


def _sha256(data: bytes) -> str:
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
    name = canonicalize_name(project) if project else None
    _services(request).pages.invalidate(name)
    return JSONResponse({"refreshed": name or "*"})


async def _analysis_queue(request: Request) -> Response:
    """
    summary: The analysis queue (admin)
    responses:
      200: {description: job counts by state and the newest jobs}
    """
    if (denied := _authorized(request)) is not None:
        return denied
    return JSONResponse(await analysis_queue(_services(request)))


async def _analysis_problems(request: Request) -> Response:
    """
    summary: Mis-tagged and broken files seen on each index (admin)
    parameters:
      - {name: index, in: query, required: false, schema: {type: string}}
    responses:
      200: {description: the files with their findings}
    """
    if (denied := _authorized(request)) is not None:
        return denied
    return JSONResponse(await analysis_problems(_services(request), request.query_params.get("index")))


async def _analysis(request: Request) -> Response:
    """
    summary: Analyzer facts for each file of a release
    responses:
      200: {description: files with their analysis state and facts}
      404: {description: no files of this release are known}
    """
    status, body = await file_analysis(
        _services(request), request.path_params["project"], request.path_params["version"]
    )
    return JSONResponse(body, status_code=status)


async def _new_files_hook(request: Request) -> Response:
    """
    summary: An index announces new files; they are queued for analysis
    requestBody:
      content:
        application/json:
          schema:
            type: object
            required: [index]
            properties:
              index: {type: string}
              projects: {type: array, items: {type: string}}
              files:
                type: array
                items: {type: object, properties: {project: {type: string}, filename: {type: string}}}
    responses:
      202: {description: queued}
      400: {description: malformed body}
      401: {description: missing or wrong bearer token}
    """
    if (denied := _authorized(request)) is not None:
        return denied
    try:
        payload = await request.json()
    except ValueError:
        return _error(400, 'the body must be JSON: {"index": NAME, "projects": [...], "files": [...]}')
    status, body = await new_files_hook(_services(request), payload)
    return JSONResponse(body, status_code=status)


async def _resolve(request: Request) -> Response:
    """
    summary: Resolve requirements for a machine into pins and lock files
    requestBody:
      content:
        application/json:
          schema:
            type: object
            required: [environment]
            properties:
              requirements: {type: array, items: {type: string}, description: PEP 508 requirements}
              manifest:
                type: object
                properties:
                  format: {type: string, enum: [requirements, pipfile, pyproject]}
                  text: {type: string}
              constraints: {type: array, items: {type: string}}
              dev_requirements: {type: array, items: {type: string}}
              environment:
                type: object
                description: what `index-proxy env` prints (markers, tags, cpu, cuda, glibc)
              recommendation_type: {type: string, enum: [latest, stable, testing, performance, security]}
              labels: {type: object, description: "label -> value, for prescriptions gated on labels"}
              library_usage: {type: object, description: "module -> dotted names used (lock --scan)"}
              runtime_environment: {type: object, description: "gpu_model, cudnn_version, base_image..."}
              search: {type: object, description: "budget_seconds, seed, max_trials of the search"}
              formats:
                type: array
                items: {type: string, enum: [requirements.txt, Pipfile.lock, pylock.toml]}
    responses:
      200: {description: pins, locks, justification and stats}
      400: {description: a malformed request, with the key at fault}
      422: {description: no solution; report explains the conflict}
      502: {description: an upstream that decides a project is unavailable}
    """
    try:
        payload = await request.json()
    except ValueError:
        return _error(400, "the body must be JSON")
    services = _services(request)
    base = services.config.server.public_url or str(request.base_url).rstrip("/")
    token = services.config.server.admin_token
    given = request.headers.get("authorization", "")
    authenticated = bool(token) and hmac.compare_digest(
        given.partition(" ")[2].strip().encode(), (token or "").encode()
    )
    status, body = await resolve_request(services, payload, base, authenticated=authenticated)
    return JSONResponse(body, status_code=status)
