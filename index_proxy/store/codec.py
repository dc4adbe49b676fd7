"""How parsed upstream pages are kept in the database: compact JSON of the model objects."""

from __future__ import annotations

import json
from typing import Any

from index_proxy.simple.model import DistributionFile, ProjectList, ProjectPage

__all__ = ["decode_list", "decode_page", "encode_list", "encode_page"]


def _file_to_dict(file: DistributionFile) -> dict[str, Any]:
    return {
        "f": file.filename,
        "u": file.url,
        "h": dict(file.hashes),
        "rp": file.requires_python,
        "y": file.yanked,
        "cm": file.core_metadata if not isinstance(file.core_metadata, dict) else dict(file.core_metadata),
        "s": file.size,
        "t": file.upload_time,
    }


def _file_from_dict(data: dict[str, Any]) -> DistributionFile:
    return DistributionFile(
        filename=data["f"],
        url=data["u"],
        hashes=data["h"],
        requires_python=data["rp"],
        yanked=data["y"],
        core_metadata=data["cm"],
        size=data["s"],
        upload_time=data["t"],
    )


def encode_page(page: ProjectPage) -> bytes:
    return json.dumps(
        {
            "name": page.name,
            "api": page.api_version,
            "versions": list(page.versions),
            "status": page.project_status,
            "files": [_file_to_dict(f) for f in page.files],
        },
        separators=(",", ":"),
    ).encode()


def decode_page(payload: bytes) -> ProjectPage:
    data = json.loads(payload)
    return ProjectPage(
        name=data["name"],
        files=tuple(_file_from_dict(f) for f in data["files"]),
        versions=tuple(data["versions"]),
        api_version=data["api"],
        project_status=data["status"],
    )


def encode_list(project_list: ProjectList) -> bytes:
    return json.dumps({"api": project_list.api_version, "names": list(project_list.names)}).encode()


def decode_list(payload: bytes) -> ProjectList:
    data = json.loads(payload)
    return ProjectList(names=tuple(data["names"]), api_version=data["api"])
