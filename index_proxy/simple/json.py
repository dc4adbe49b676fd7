"""Parser for PEP 691 JSON simple-index pages, with the PEP 592, 700, 714 and 792 fields.

Unlike the HTML parser this one is strict about structure: a JSON page with the wrong shape is a broken
upstream, and saying exactly where it broke (``files[3].hashes``) is what lets an operator report it.
Unknown keys are ignored, as the spec requires, and a JSON ``null`` in an optional field counts as absent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NoReturn
from urllib.parse import urljoin

from .errors import InvalidPage, check_api_version
from .model import CoreMetadata, DistributionFile, ProjectList, ProjectPage, Yanked

__all__ = ["parse_project_list_json", "parse_project_page_json"]


def parse_project_page_json(content: bytes, url: str) -> ProjectPage:
    """Parse a project detail page fetched from ``url``; relative file URLs are resolved against it."""
    page = _Reader(url)
    root = page.load(content)
    api_version = page.api_version(root)
    files = page.array(root, "files", "files")
    versions = root.get("versions")
    return ProjectPage(
        name=page.string(root, "name", "name"),
        files=tuple(page.distribution_file(entry, f"files[{index}]") for index, entry in enumerate(files)),
        versions=() if versions is None else page.strings(versions, "versions"),
        api_version=api_version,
        project_status=page.project_status(root),
    )


def parse_project_list_json(content: bytes, url: str) -> ProjectList:
    """Parse a project list fetched from ``url``; names are kept as the upstream wrote them."""
    page = _Reader(url)
    root = page.load(content)
    api_version = page.api_version(root)
    projects = page.array(root, "projects", "projects")
    names = tuple(
        page.string(page.object(entry, f"projects[{index}]"), "name", f"projects[{index}].name")
        for index, entry in enumerate(projects)
    )
    return ProjectList(names=names, api_version=api_version)


_TYPE_NAMES: dict[type, str] = {
    dict: "object",
    list: "list",
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
    type(None): "null",
}


def _type_name(value: object) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


class _Reader:
    """Typed access to decoded JSON that reports failures as `InvalidPage` with the offending path."""

    __slots__ = ("url",)

    def __init__(self, url: str) -> None:
        self.url = url

    def fail(self, path: str, reason: str) -> NoReturn:
        raise InvalidPage(self.url, f"{path}: {reason}")

    def wrong_type(self, path: str, expected: str, value: object) -> NoReturn:
        self.fail(path, f"expected {expected}, got {_type_name(value)}")

    def load(self, content: bytes) -> Mapping[str, Any]:
        try:
            # json.loads detects UTF-8/16/32 from the bytes themselves, as RFC 8259 allows.
            root = json.loads(content)
        except RecursionError:
            raise InvalidPage(self.url, "invalid JSON: nested too deeply") from None
        except ValueError as exc:
            raise InvalidPage(self.url, f"invalid JSON: {exc}") from None
        return self.object(root, "top level")

    def object(self, value: object, path: str) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            self.wrong_type(path, "an object", value)
        return value

    def required(self, parent: Mapping[str, Any], key: str, path: str) -> object:
        if key not in parent:
            self.fail(path, "missing")
        return parent[key]

    def string(self, parent: Mapping[str, Any], key: str, path: str) -> str:
        value = self.required(parent, key, path)
        if not isinstance(value, str):
            self.wrong_type(path, "a string", value)
        return value

    def array(self, parent: Mapping[str, Any], key: str, path: str) -> list[Any]:
        value = self.required(parent, key, path)
        if not isinstance(value, list):
            self.wrong_type(path, "a list", value)
        return value

    def strings(self, value: object, path: str) -> tuple[str, ...]:
        if not isinstance(value, list):
            self.wrong_type(path, "a list", value)
        for index, item in enumerate(value):
            if not isinstance(item, str):
                self.wrong_type(f"{path}[{index}]", "a string", item)
        return tuple(value)

    def optional_string(self, parent: Mapping[str, Any], key: str, path: str) -> str | None:
        value = parent.get(key)
        if value is not None and not isinstance(value, str):
            self.wrong_type(path, "a string", value)
        return value

    def hashes(self, value: object, path: str) -> dict[str, str]:
        mapping = self.object(value, path)
        hashes: dict[str, str] = {}
        for name, digest in mapping.items():
            if not isinstance(digest, str):
                self.wrong_type(f"{path}.{name}", "a string", digest)
            # Digests are case-insensitive hex; one spelling keeps comparisons with HTML pages exact.
            hashes[name.lower()] = digest.lower()
        return hashes

    def api_version(self, root: Mapping[str, Any]) -> str:
        meta = root.get("meta")
        if meta is None:
            # The spec says to assume 1.0 when a page does not declare its version.
            return "1.0"
        version = self.object(meta, "meta").get("api-version")
        if version is None:
            return "1.0"
        if not isinstance(version, str):
            self.wrong_type("meta.api-version", "a string", version)
        return check_api_version(self.url, version)

    def project_status(self, root: Mapping[str, Any]) -> str | None:
        path = "project-status"
        status = root.get(path)
        if status is None:
            # The spec's own example puts it under "meta"; accept that spelling of the mistake too.
            meta = root.get("meta")
            status = meta.get(path) if isinstance(meta, dict) else None
            path = "meta.project-status"
        if status is None:
            return None
        status = self.object(status, path)
        # PEP 792's prose says "state"; the living spec, PyPI and uv say "status".
        key = "status" if "status" in status else "state"
        return self.optional_string(status, key, f"{path}.{key}")

    def core_metadata(self, value: object, path: str) -> CoreMetadata:
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, dict):
            return self.hashes(value, path)
        self.wrong_type(path, "a boolean or an object", value)

    def yanked(self, value: object, path: str) -> Yanked:
        if value is None:
            return False
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            # The spec forbids an empty reason; "yanked, no reason" matches what data-yanked="" means.
            return value.strip() or True
        self.wrong_type(path, "a boolean or a string", value)

    def size(self, value: object, path: str) -> int | None:
        if value is None:
            return None
        # bool is an int subclass, but `true` is not a size.
        if not isinstance(value, int) or isinstance(value, bool):
            self.wrong_type(path, "an integer", value)
        if value < 0:
            self.fail(path, f"expected a non-negative integer, got {value}")
        return value

    def gpg_sig(self, value: object, path: str) -> bool | None:
        if value is not None and not isinstance(value, bool):
            self.wrong_type(path, "a boolean", value)
        return value

    def distribution_file(self, value: object, path: str) -> DistributionFile:
        entry = self.object(value, path)
        filename = self.string(entry, "filename", f"{path}.filename")
        file_url = self.string(entry, "url", f"{path}.url")
        if not file_url.strip():
            # urljoin would quietly turn an empty URL into the page's own URL.
            self.fail(f"{path}.url", "empty")
        hashes = self.hashes(self.required(entry, "hashes", f"{path}.hashes"), f"{path}.hashes")
        # PEP 714: read the legacy key only when the current one is absent.
        metadata_key = "core-metadata" if entry.get("core-metadata") is not None else "dist-info-metadata"
        requires_python = self.optional_string(entry, "requires-python", f"{path}.requires-python")
        return DistributionFile(
            filename=filename,
            url=urljoin(self.url, file_url.strip()),
            hashes=hashes,
            requires_python=(requires_python or "").strip() or None,
            yanked=self.yanked(entry.get("yanked"), f"{path}.yanked"),
            core_metadata=self.core_metadata(entry.get(metadata_key), f"{path}.{metadata_key}"),
            size=self.size(entry.get("size"), f"{path}.size"),
            upload_time=self.optional_string(entry, "upload-time", f"{path}.upload-time"),
            gpg_sig=self.gpg_sig(entry.get("gpg-sig"), f"{path}.gpg-sig"),
        )
