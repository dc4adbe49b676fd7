"""Writing a merged project as PEP 691 JSON and PEP 503 HTML bytes (API version 1.1)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any
from urllib.parse import quote

from packaging.utils import canonicalize_name

from index_proxy.merge import ServedFile

__all__ = [
    "core_metadata_of",
    "file_url",
    "render_list_html",
    "render_list_json",
    "render_project_html",
    "render_project_json",
]

_JSON_SEPARATORS = (",", ":")


def file_url(prefix: str, served: ServedFile) -> str:
    return f"{prefix}files/{served.file_id}/{quote(served.file.filename)}"


def core_metadata_of(served: ServedFile, extracted_sha256: str | None) -> Mapping[str, str] | bool | None:
    """What to advertise as ``core-metadata``: only what ``/files/...metadata`` can really serve."""
    upstream = served.file.core_metadata
    # What we serve is what we hold: when the upstream's copy failed or mismatched, ours differs.
    if extracted_sha256:
        return {"sha256": extracted_sha256}
    if isinstance(upstream, Mapping) and upstream:
        return upstream
    if upstream is True or served.file.filename.endswith(".whl"):
        # A wheel's METADATA can always be read from the wheel itself.
        return True
    return None


def _api_version(files: Sequence[ServedFile]) -> str:
    # PEP 700 makes ``size`` mandatory at 1.1; an HTML upstream does not tell sizes.
    return "1.1" if all(served.file.size is not None for served in files) else "1.0"


def render_project_json(
    name: str,
    files: Sequence[ServedFile],
    versions: Iterable[str],
    prefix: str,
    metadata_hashes: Mapping[str, str],
    project_status: str | None = None,
) -> bytes:
    entries: list[dict[str, Any]] = []
    for served in files:
        file = served.file
        entry: dict[str, Any] = {
            "filename": file.filename,
            "url": file_url(prefix, served),
            "hashes": dict(file.hashes),
        }
        if file.requires_python:
            entry["requires-python"] = file.requires_python
        if file.yanked:
            entry["yanked"] = file.yanked
        metadata = core_metadata_of(served, metadata_hashes.get(served.file_id))
        if metadata is not None:
            entry["core-metadata"] = dict(metadata) if isinstance(metadata, Mapping) else metadata
        if file.size is not None:
            entry["size"] = file.size
        if file.upload_time:
            entry["upload-time"] = file.upload_time
        entries.append(entry)
    document: dict[str, Any] = {
        "meta": {"api-version": _api_version(files)},
        "name": name,
        "versions": list(versions),
        "files": entries,
    }
    if project_status:
        document["project-status"] = {"status": project_status}
    return json.dumps(document, separators=_JSON_SEPARATORS).encode()


def render_project_html(
    name: str, files: Sequence[ServedFile], prefix: str, metadata_hashes: Mapping[str, str]
) -> bytes:
    lines = [
        "<!DOCTYPE html>",
        "<html>",
        "<head>",
        f'<meta name="pypi:repository-version" content="{_api_version(files)}">',
        f"<title>Links for {escape(name)}</title>",
        "</head>",
        "<body>",
        f"<h1>Links for {escape(name)}</h1>",
    ]
    for served in files:
        file = served.file
        href = file_url(prefix, served)
        if file.sha256:
            href += f"#sha256={file.sha256}"
        attributes = [f'href="{escape(href)}"']
        if file.requires_python:
            attributes.append(f'data-requires-python="{escape(file.requires_python)}"')
        if file.yanked:
            reason = file.yanked if isinstance(file.yanked, str) else ""
            attributes.append(f'data-yanked="{escape(reason)}"')
        metadata = core_metadata_of(served, metadata_hashes.get(served.file_id))
        if metadata is not None:
            if isinstance(metadata, Mapping):
                algo, digest = next(iter(metadata.items()))
                value = f"{algo}={digest}"
            else:
                value = "true"
            # The legacy attribute too, for pip releases that predate PEP 714.
            attributes.append(f'data-core-metadata="{value}" data-dist-info-metadata="{value}"')
        lines.append(f"<a {' '.join(attributes)}>{escape(file.filename)}</a><br/>")
    lines += ["</body>", "</html>", ""]
    return "\n".join(lines).encode()


def render_list_json(names: Iterable[str]) -> bytes:
    return json.dumps(
        {"meta": {"api-version": "1.1"}, "projects": [{"name": name} for name in names]},
        separators=_JSON_SEPARATORS,
    ).encode()


def render_list_html(names: Iterable[str]) -> bytes:
    body = "\n".join(f'<a href="{quote(canonicalize_name(name))}/">{escape(name)}</a><br/>' for name in names)
    return (
        '<!DOCTYPE html>\n<html>\n<head>\n<meta name="pypi:repository-version" content="1.1">\n'
        f"<title>Simple index</title>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    ).encode()
