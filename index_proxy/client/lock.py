"""``index-proxy lock``: send a manifest and a machine to a server's ``/api/v1/resolve``, write the locks.

The resolution happens on the server, for the machine described (this one, or the JSON that
``index-proxy env`` wrote elsewhere); this side only reads files, checks them with the server's own
parsers so that mistakes are reported before a request is made, and writes what comes back.

Exit codes: 0 locked; 1 the server found no solution (its report is printed); 2 anything else
(bad input, a server that cannot be reached, a request the server refused).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO

import httpx
import tomli_w

from index_proxy.client.detect import detect_environment
from index_proxy.client.scan import LibraryUsage, scan_source
from resolver.environment import Environment, InvalidEnvironment
from resolver.manifests import InvalidManifest, ManifestFormat, parse_manifest

__all__ = [
    "DEFAULT_SERVER",
    "FORMATS",
    "MANIFEST_NAMES",
    "LockFailed",
    "LockOptions",
    "default_lock_path",
    "find_manifest",
    "load_environment",
    "manifest_format",
    "read_constraints",
    "run_lock",
    "scan_library_usage",
    "without_dev",
]

LockFormat = Literal["requirements.txt", "Pipfile.lock", "pylock.toml"]
FORMATS: tuple[LockFormat, ...] = ("requirements.txt", "Pipfile.lock", "pylock.toml")
# The order a bare ``index-proxy lock`` looks for input in: the pip-tools input first, since a
# requirements.txt next to it is usually that input's previous lock.
MANIFEST_NAMES = ("requirements.in", "requirements.txt", "Pipfile", "pyproject.toml")
DEFAULT_SERVER = "http://127.0.0.1:8000"
# A cold resolution fetches metadata from every upstream, so reads may take minutes; an unreachable
# host should not keep the user waiting that long, hence the shorter connect phase.
_TIMEOUT = httpx.Timeout(300.0, connect=30.0)


class LockFailed(Exception):
    """Stops the command with a message for stderr and an exit code."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class LockOptions:
    file: Path | None = None
    server: str | None = None
    environment: Path | None = None
    formats: tuple[LockFormat, ...] = ()
    output: str | None = None  # a file, a directory, or "-" for stdout
    dev: bool = False
    constraints: tuple[Path, ...] = ()
    scan: Path | None = None  # source tree whose library usage is sent (``--scan``)
    recommendation_type: str | None = None
    labels: tuple[tuple[str, str], ...] = ()


# --- input --------------------------------------------------------------------------------------


def find_manifest(directory: Path) -> Path:
    for name in MANIFEST_NAMES:
        if (directory / name).is_file():
            return directory / name
    where = "the current directory" if directory == Path() else str(directory)
    raise LockFailed(f"no {', '.join(MANIFEST_NAMES)} in {where}; name the file to lock")


def manifest_format(path: Path) -> ManifestFormat:
    """By file name, as pipenv and pip-tools name their inputs; anything else is a requirements list."""
    if path.name == "Pipfile":
        return "pipfile"
    if path.name == "pyproject.toml":
        return "pyproject"
    return "requirements"


def without_dev(text: str, manifest_format: ManifestFormat) -> str:
    """The manifest without its development requirements.

    The server resolves a manifest's dev requirements along with the rest and has no switch to leave
    them out, so for a requirements.txt or pylock.toml lock without ``--dev`` they are removed from
    the text sent: everything else the server reads there (requires-python, the sources) stays.
    """
    if manifest_format == "requirements":
        return text
    document = tomllib.loads(text)
    if manifest_format == "pipfile":
        document.pop("dev-packages", None)
    else:
        groups = document.get("dependency-groups")
        if isinstance(groups, dict):
            groups.pop("dev", None)
    return tomli_w.dumps(document)


def read_constraints(paths: Sequence[Path]) -> list[str]:
    """Requirement lines from constraints files, checked like a requirements file."""
    constraints: list[str] = []
    for path in paths:
        text = _read_text(path, "constraints file")
        try:
            constraints.extend(parse_manifest(text, "requirements").requirements)
        except InvalidManifest as error:
            raise LockFailed(_problems(path, error.problems)) from error
    return constraints


def load_environment(path: Path) -> dict[str, Any]:
    """The JSON in ``path``, checked with the server's own schema so a bad key is named before sending."""
    text = _read_text(path, "environment file")
    try:
        data = json.loads(text)
    except ValueError as error:
        raise LockFailed(f"{path}: not JSON ({error}); write it with `index-proxy env --output`") from error
    try:
        Environment.from_json(data)
    except InvalidEnvironment as error:
        raise LockFailed(_problems(path, error.problems)) from error
    assert isinstance(data, dict)  # from_json accepts mappings only
    return data


def scan_library_usage(root: Path, err: TextIO) -> LibraryUsage:
    """The ``library_usage`` of the code under *root*; files that do not parse are named on *err*."""
    if not root.exists():
        raise LockFailed(f"--scan {root}: no such file or directory")
    result = scan_source(root)
    for problem in result.problems:
        print(f"index-proxy lock: --scan: {problem}", file=err)
    if result.files == 0:
        raise LockFailed(
            f"--scan {root}: no .py files there (virtual environments and hidden directories are skipped)"
        )
    return result.usage


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise LockFailed(f"cannot read {what} {path}: {error}") from error


def _problems(path: Path, problems: Sequence[str]) -> str:
    return f"{path}:\n" + "\n".join(f"  {problem}" for problem in problems)


# --- output -------------------------------------------------------------------------------------


def default_lock_path(manifest: Path, lock_format: LockFormat) -> Path:
    """Where a lock goes by default: next to its input, named as its tools expect.

    A pip-tools input ``x.in`` locks to ``x.txt``; any other requirements.txt lock is
    ``<stem>.lock.txt`` so that locking a requirements.txt never overwrites it.
    """
    directory = manifest.parent
    if lock_format == "Pipfile.lock":
        return directory / "Pipfile.lock"
    if lock_format == "pylock.toml":
        return directory / "pylock.toml"
    if manifest.suffix == ".in":
        return manifest.with_suffix(".txt")
    if manifest.suffix == ".txt":
        return manifest.with_name(f"{manifest.stem}.lock.txt")
    return directory / "requirements.lock.txt"


def _destinations(
    manifest: Path, formats: Sequence[LockFormat], output: str | None
) -> dict[LockFormat, Path | None]:
    """Each format's file; None means stdout."""
    if output == "-":
        if len(formats) != 1:
            raise LockFailed("--output - writes one lock to stdout; ask for one --format")
        return {formats[0]: None}
    if output is None:
        places = {fmt: default_lock_path(manifest, fmt) for fmt in formats}
    else:
        target = Path(output)
        if len(formats) == 1 and not target.is_dir():
            places = {formats[0]: target}
        else:
            if target.exists() and not target.is_dir():
                raise LockFailed(f"--output {output}: several formats need a directory, and this is a file")
            places = {fmt: target / default_lock_path(manifest, fmt).name for fmt in formats}
    for place in places.values():
        if place.resolve() == manifest.resolve():
            raise LockFailed(f"the lock would overwrite its input {manifest}; choose another --output")
    return dict(places)


def _write(path: Path, text: str) -> None:
    """Replace the file whole: an interrupted run leaves the old lock, never half of a new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# --- the request --------------------------------------------------------------------------------


def _post(url: str, body: Mapping[str, Any]) -> httpx.Response:
    try:
        # trust_env: a client behind a corporate proxy reaches the server the way pip would.
        with httpx.Client(trust_env=True, timeout=_TIMEOUT) as client:
            return client.post(url, json=body)
    except httpx.TimeoutException as error:
        raise LockFailed(f"{url}: no answer in time ({type(error).__name__}); is the server busy?") from error
    except (httpx.TransportError, httpx.InvalidURL) as error:
        raise LockFailed(f"cannot reach {url}: {type(error).__name__}: {error}") from error


def _answer(response: httpx.Response, url: str) -> Any:
    try:
        return response.json()
    except ValueError as error:
        raise LockFailed(
            f"{url} answered {response.status_code} with something that is not JSON; "
            "is --server an index-proxy?"
        ) from error


def _describe(environment: Mapping[str, Any]) -> str:
    tags = environment.get("tags") or ["?"]
    cpu = environment.get("cpu") or {}
    cuda = environment.get("cuda")
    parts = [str(tags[0]), str(cpu.get("level") or "no x86-64 level"), f"CUDA {cuda}" if cuda else "no CUDA"]
    if environment.get("glibc"):
        parts.append(f"glibc {environment['glibc']}")
    return ", ".join(parts)


def _summary(body: Mapping[str, Any]) -> list[str]:
    pins = body.get("pins") or []
    stats = body.get("stats") or {}
    lines = [
        f"locked {len(pins)} package{'s' if len(pins) != 1 else ''} in {stats.get('seconds', '?')} s "
        f"({stats.get('decisions', '?')} decisions, {stats.get('conflicts', '?')} conflicts)"
    ]
    for entry in body.get("justification") or []:
        lines.append(f"  {entry.get('message')}")
        lines.extend(
            f"    not chosen: {rejected.get('filename')}: {rejected.get('reason')}"
            for rejected in entry.get("rejected_files") or []
        )
    advice = body.get("advice") or {}
    if advice:
        lines.append(f"advice ({advice.get('recommendation_type')}): score {advice.get('score')}")
        for key in ("stack_info", "justification"):
            lines.extend(
                f"  {note.get('type')}: {note.get('message')} ({note.get('link')})"
                for note in advice.get(key) or []
            )
    return lines


def run_lock(options: LockOptions, *, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    try:
        return _run(options, out, err)
    except LockFailed as error:
        print(f"index-proxy lock: {error}", file=err)
        return error.code


def _run(options: LockOptions, out: TextIO, err: TextIO) -> int:
    # Relative to the working directory, so messages show the short names the user typed.
    manifest = options.file if options.file is not None else find_manifest(Path())
    kind = manifest_format(manifest)
    text = _read_text(manifest, "manifest")
    try:
        parsed = parse_manifest(text, kind)
    except InvalidManifest as error:
        raise LockFailed(_problems(manifest, error.problems)) from error
    formats: tuple[LockFormat, ...] = tuple(dict.fromkeys(options.formats)) or (
        ("Pipfile.lock",) if kind == "pipfile" else ("requirements.txt",)
    )
    if parsed.dev_requirements and not options.dev:
        if "Pipfile.lock" in formats and len(formats) > 1:
            # One request gives every lock the same packages: Pipfile.lock's dev section would empty,
            # or requirements.txt/pylock.toml (no dev section) would carry the dev tools.
            raise LockFailed(
                "Pipfile.lock always locks the development requirements (in develop), the other formats "
                "only with --dev: pass --dev, or lock Pipfile.lock and the others in separate runs"
            )
        if "Pipfile.lock" not in formats:
            text = without_dev(text, kind)
        # else: the whole Pipfile goes, as `pipenv lock` locks both sections, and the lock's _meta.hash
        # (the server hashes the text it gets) then matches the Pipfile for `--deploy` installs.
    destinations = _destinations(manifest, formats, options.output)
    constraints = read_constraints(options.constraints)
    environment: Mapping[str, Any]
    if options.environment is not None:
        environment = load_environment(options.environment)
    else:
        environment = detect_environment()
    library_usage = None if options.scan is None else scan_library_usage(options.scan, err)
    server = (options.server or os.environ.get("INDEX_PROXY_URL") or DEFAULT_SERVER).rstrip("/")
    url = f"{server}/api/v1/resolve"
    # With the lock going to stdout, everything else goes to stderr so the lock can be piped.
    info = err if None in destinations.values() else out
    machine = f"the machine in {options.environment}" if options.environment else "this machine"
    print(f"locking {manifest} for {machine} ({_describe(environment)}) at {server}", file=info)
    request: dict[str, Any] = {
        "manifest": {"format": kind, "text": text},
        "environment": environment,
        "formats": list(formats),
        "constraints": constraints,
    }
    if options.recommendation_type is not None:
        request["recommendation_type"] = options.recommendation_type
    if options.labels:
        request["labels"] = dict(options.labels)
    if library_usage is not None:
        request["library_usage"] = library_usage
        names = sum(len(used) for used in library_usage.values())
        print(
            f"sending the usage of {len(library_usage)} librar{'y' if len(library_usage) == 1 else 'ies'} "
            f"({names} names) from {options.scan}",
            file=info,
        )

    response = _post(url, request)
    body = _answer(response, url)
    message = body.get("error") if isinstance(body, Mapping) else None
    if response.status_code == 422:
        print(f"index-proxy lock: {message or 'no solution'}", file=err)
        report = body.get("report") if isinstance(body, Mapping) else None
        if report:
            print(report, file=err)
        return 1
    if response.status_code == 400:
        raise LockFailed(f"the server refused the request: {message or response.text}")
    if response.status_code != 200 or not isinstance(body, Mapping):
        raise LockFailed(f"{url} answered {response.status_code}: {message or response.text[:500]}")
    locks = body.get("locks") or {}
    missing = [fmt for fmt in formats if not isinstance(locks.get(fmt), str)]
    if missing:
        raise LockFailed(f"the server sent no {', '.join(missing)}; it may be older than this client")

    for line in _summary(body):
        print(line, file=info)
    for fmt, place in destinations.items():
        if place is None:
            out.write(locks[fmt])
        else:
            _write(place, locks[fmt])
            print(f"wrote {place}", file=info)
    return 0
