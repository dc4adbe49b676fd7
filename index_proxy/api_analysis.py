"""The analysis API's logic: what ``/api/v1/analysis``, the hook and the admin views answer."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from index_proxy.analysis import enqueue_project_files
from index_proxy.services import Services
from index_proxy.upstreams.folder import project_of_filename

__all__ = ["analysis_problems", "analysis_queue", "file_analysis", "new_files_hook"]


def _same_version(filename: str, version: Version) -> bool:
    parsed = project_of_filename(filename)
    if parsed is None:
        return False
    try:
        return Version(parsed[1]) == version
    except InvalidVersion:
        return False


async def file_analysis(services: Services, project: str, version: str) -> tuple[int, dict[str, Any]]:
    name = canonicalize_name(project)
    try:
        wanted = Version(version)
    except InvalidVersion:
        return 400, {"error": f"{version!r} is not a PEP 440 version", "status": 400}
    records = [r for r in await services.database.files_of_project(name) if _same_version(r.filename, wanted)]
    if not records:
        return 404, {
            "error": f"no files of {name} {version} are known; they are known once the project's page "
            "has been served or its index is monitored",
            "status": 404,
        }
    facts = await services.analysis.facts_for([r.sha256 for r in records if r.sha256])
    jobs = await services.analysis.job_states([r.file_id for r in records])
    files = []
    for record in sorted(records, key=lambda r: r.filename):
        stored = facts.get(record.sha256 or "")
        job = jobs.get(record.file_id)
        state = "done" if stored is not None else (job["state"] if job else "not-queued")
        files.append(
            {
                "filename": record.filename,
                "index": record.index_name,
                "sha256": record.sha256,
                "url": f"/files/{record.file_id}/{quote(record.filename)}",
                "state": state,
                "error": job["error"] if job and state != "done" else None,
                "facts": stored.facts if stored is not None else None,
            }
        )
    return 200, {"project": name, "version": str(wanted), "files": files}


async def new_files_hook(services: Services, payload: Any) -> tuple[int, dict[str, Any]]:
    """``{"index": NAME, "projects": [...], "files": [{"project": P, "filename": F}, ...]}``."""
    if not isinstance(payload, dict) or not isinstance(payload.get("index"), str):
        return 400, {
            "error": 'expected {"index": NAME, "projects": [...]} or {"index": NAME, "files": [...]}',
            "status": 400,
        }
    index = payload["index"]
    if index not in {i.name for i in services.config.indexes}:
        names = ", ".join(i.name for i in services.config.indexes)
        return 404, {"error": f"no index named {index!r} (configured: {names})", "status": 404}
    wanted: dict[str, set[str] | None] = {}
    for project in payload.get("projects") or []:
        if not isinstance(project, str):
            return 400, {"error": "projects must be a list of names", "status": 400}
        wanted[canonicalize_name(project)] = None
    for position, item in enumerate(payload.get("files") or []):
        if not isinstance(item, dict) or not isinstance(item.get("filename"), str):
            return 400, {"error": f"files[{position}] needs a filename", "status": 400}
        project = item.get("project")
        if not isinstance(project, str):
            parsed = project_of_filename(item["filename"])
            if parsed is None:
                return 400, {
                    "error": f"files[{position}]: {item['filename']!r} is not a distribution filename",
                    "status": 400,
                }
            project = parsed[0]
        names = wanted.setdefault(canonicalize_name(project), set())
        if names is not None:
            names.add(item["filename"])
    if not wanted:
        return 400, {"error": "name at least one project or file", "status": 400}
    queued = 0
    for project, filenames in wanted.items():
        try:
            queued += await enqueue_project_files(services, index, project, "hook", filenames=filenames)
        except ConnectionError as error:
            return 502, {"error": str(error), "status": 502}
        services.pages.invalidate(project)
    return 202, {"queued": queued, "projects": sorted(wanted)}


async def analysis_queue(services: Services) -> dict[str, Any]:
    return await services.analysis.summary()


async def analysis_problems(services: Services, index: str | None) -> dict[str, Any]:
    return {"files": await services.analysis.problems(index=index)}
