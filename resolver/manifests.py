"""Reading what a user asks for: a PEP 508 list, requirements.in/.txt, a Pipfile, or pyproject.toml.

Pure: text in, requirement strings out. Every problem is reported with its line, so a client sees
exactly what to fix.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from packaging.requirements import InvalidRequirement, Requirement

__all__ = ["InvalidManifest", "Manifest", "ManifestFormat", "parse_manifest"]

ManifestFormat = Literal["requirements", "pipfile", "pyproject"]


class InvalidManifest(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Manifest:
    requirements: tuple[str, ...]
    dev_requirements: tuple[str, ...] = ()
    constraints: tuple[str, ...] = ()
    requires_python: str | None = None
    sources: tuple[Mapping[str, Any], ...] = field(default_factory=tuple)


def _check(requirement: str, where: str, problems: list[str]) -> str | None:
    try:
        Requirement(requirement)
    except InvalidRequirement as error:
        problems.append(f"{where}: {error}")
        return None
    return requirement


def _requirements_lines(text: str, name: str) -> Manifest:
    problems: list[str] = []
    requirements: list[str] = []
    logical = text.replace("\\\n", " ")
    for number, raw in enumerate(logical.splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-"):
            option = line.split()[0]
            if option in ("--index-url", "-i", "--extra-index-url", "--hash") or option.startswith("--hash="):
                continue  # the proxy is the index; hashes are what a lock writes, not reads
            problems.append(f"{name}:{number}: option {option} is not supported; list requirements only")
            continue
        requirement = line.split(" --hash", 1)[0].strip()
        if _check(requirement, f"{name}:{number}", problems) is not None:
            requirements.append(requirement)
    if problems:
        raise InvalidManifest(problems)
    return Manifest(tuple(requirements))


def _pipfile_entry(name: str, spec: Any, where: str, problems: list[str]) -> str | None:
    if isinstance(spec, str):
        text = name if spec in ("*", "") else f"{name}{spec}"
    elif isinstance(spec, Mapping):
        if any(key in spec for key in ("git", "path", "file", "editable")):
            problems.append(f"{where}: VCS, path and file requirements cannot be resolved by an index")
            return None
        extras = f"[{','.join(spec['extras'])}]" if spec.get("extras") else ""
        version = spec.get("version", "*")
        text = f"{name}{extras}" + ("" if version in ("*", "") else version)
        if spec.get("markers"):
            text += f"; {spec['markers']}"
    else:
        problems.append(f"{where}: expected a version string or a table")
        return None
    return _check(text, where, problems)


def _pipfile(text: str) -> Manifest:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise InvalidManifest([f"Pipfile: {error}"]) from error
    problems: list[str] = []
    sections: dict[str, list[str]] = {"packages": [], "dev-packages": []}
    for section, collected in sections.items():
        for name, spec in (document.get(section) or {}).items():
            requirement = _pipfile_entry(name, spec, f"Pipfile [{section}] {name}", problems)
            if requirement is not None:
                collected.append(requirement)
    if problems:
        raise InvalidManifest(problems)
    requires = document.get("requires") or {}
    python = requires.get("python_full_version") or requires.get("python_version")
    return Manifest(
        tuple(sections["packages"]),
        tuple(sections["dev-packages"]),
        requires_python=f"=={python}.*"
        if python and python.count(".") == 1
        else (f"=={python}" if python else None),
        sources=tuple(document.get("source") or ()),
    )


def _pyproject(text: str) -> Manifest:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise InvalidManifest([f"pyproject.toml: {error}"]) from error
    project = document.get("project") or {}
    problems: list[str] = []
    requirements = [
        r
        for i, r in enumerate(project.get("dependencies") or [])
        if _check(r, f"[project].dependencies[{i}]", problems)
    ]
    groups = document.get("dependency-groups") or {}
    dev = [
        r
        for i, r in enumerate(groups.get("dev") or [])
        if isinstance(r, str) and _check(r, f"[dependency-groups].dev[{i}]", problems)
    ]
    if problems:
        raise InvalidManifest(problems)
    return Manifest(tuple(requirements), tuple(dev), requires_python=project.get("requires-python"))


def parse_manifest(text: str, manifest_format: ManifestFormat) -> Manifest:
    """Raises InvalidManifest listing every problem."""
    if manifest_format == "pipfile":
        return _pipfile(text)
    if manifest_format == "pyproject":
        return _pyproject(text)
    return _requirements_lines(text, "requirements")
