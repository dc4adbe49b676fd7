"""Loading prescription files and directory trees into validated units, an index and problems.

Directory trees are read as Thoth reads them: recursively, in name order, skipping names that start
with a dot; ``.yaml``/``.yml`` files are prescriptions; a ``_prescription_metadata.yaml`` sets the
namespace (``prescription.name``, the prefix of every unit name below it) and release for its
directory and everything under it, until a deeper one takes over. Unlike Thoth, a file or directory
named directly also takes the nearest metadata file from the directories above it, so checking one
file names its units as loading the whole tree does; and ``.pickle`` files (which Thoth loaded as a
whole replacement database) are ignored.

This is the package's one place of I/O: it reads the files. Everything is collected and reported,
never stopping at the first problem; a unit with a problem is left out, the rest load. With a
:class:`~prescriptions.cache.CompileCache`, a tree whose files are byte-for-byte unchanged is not
parsed again.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import packaging
import yaml

from prescriptions import _yaml
from prescriptions._reader import Reader, join
from prescriptions.cache import CompileCache
from prescriptions.compiler import compile_units
from prescriptions.index import UnitIndex
from prescriptions.lint import duplicates
from prescriptions.model import DEFAULT_NAMESPACE, Namespace, Unit
from prescriptions.problems import PrescriptionError, Problem
from prescriptions.schema import read_document

__all__ = ["METADATA_FILE", "Prescriptions", "load", "parse"]


def __dir__() -> list[str]:
    return __all__


METADATA_FILE = "_prescription_metadata.yaml"
_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Prescriptions:
    """What a load produced: the valid units, their compiled index, and every problem found."""

    units: tuple[Unit[Any], ...]
    index: UnitIndex
    problems: tuple[Problem, ...]
    namespaces: tuple[Namespace, ...]
    """Each distinct (name, release) the loaded files were under, in first-use order."""
    files: tuple[str, ...]
    """The prescription files read, as named in problems."""
    digest: str
    """sha256 of every file read (path and content): the compile cache key."""
    from_cache: bool = field(default=False, compare=False)

    def check(self) -> Prescriptions:
        """*self*; :raises PrescriptionError: when anything failed to load."""
        if self.problems:
            raise PrescriptionError(self.problems)
        return self


def parse(
    text: str, file: str = "<string>", namespace: Namespace | None = None
) -> tuple[list[Unit[Any]], list[Problem]]:
    """The valid units of prescription YAML *text* and its problems; *file* names it in both."""
    reader = Reader(file)
    try:
        root = _yaml.compose(text)
    except yaml.YAMLError as exc:
        line, message = _yaml.syntax_error(exc)
        return [], [Problem(file, line, "", message, "yaml")]
    units = read_document(reader, root, namespace or Namespace())
    return units, [problem for _, problem in sorted(reader.problems, key=lambda pair: pair[0])]


@dataclass(frozen=True, slots=True)
class _Source:
    path: str
    """As shown in problems: the path given, joined with the path found under it."""
    data: bytes | None
    error: str | None = None
    metadata: str | None = None
    """The metadata file that applies (a key of the collected metadata), if any."""


def load(paths: Iterable[str | os.PathLike[str]], *, cache: CompileCache | None = None) -> Prescriptions:
    """Load prescription files and directory trees, merged into one namespace-qualified set.

    Never raises for what the files contain: problems (including unreadable or missing paths) are
    in :attr:`Prescriptions.problems`; call :meth:`Prescriptions.check` to turn them into an error.
    """
    sources, metadata = _collect(paths)
    digest = _digest(sources, metadata)
    if cache is not None:
        cached = cache.get(digest)
        if isinstance(cached, Prescriptions):
            return dataclasses.replace(cached, from_cache=True)
    problems: list[Problem] = []
    namespaces = {path: _namespace(source, problems) for path, source in sorted(metadata.items())}
    units: list[Unit[Any]] = []
    used: dict[Namespace, None] = {}
    for source in sources:
        if source.data is None:
            problems.append(Problem(source.path, None, "", f"cannot read: {source.error}", "unreadable"))
            continue
        namespace = namespaces[source.metadata] if source.metadata is not None else Namespace()
        try:
            text = source.data.decode("utf-8")
        except UnicodeDecodeError as exc:
            problems.append(Problem(source.path, None, "", f"not UTF-8 text: {exc.reason}", "unreadable"))
            continue
        file_units, file_problems = parse(text, source.path, namespace)
        units += file_units
        problems += file_problems
        used.setdefault(namespace)
    found = duplicates(units)
    if found:
        dropped = {id(unit) for unit, _ in found}
        units = [unit for unit in units if id(unit) not in dropped]
        problems += [problem for _, problem in found]
    result = Prescriptions(
        units=tuple(units),
        index=UnitIndex(compile_units(units)),
        problems=tuple(problems),
        namespaces=tuple(used),
        files=tuple(source.path for source in sources),
        digest=digest,
    )
    if cache is not None:
        cache.put(digest, result)
    return result


# --- reading the tree --------------------------------------------------------------------------------


def _read(path: str) -> tuple[bytes | None, str | None]:
    try:
        return Path(path).read_bytes(), None
    except OSError as exc:
        return None, exc.strerror or str(exc)


def _collect(paths: Iterable[str | os.PathLike[str]]) -> tuple[list[_Source], dict[str, _Source]]:
    """The prescription files under *paths* (in order) and the metadata files that apply to them."""
    sources: list[_Source] = []
    metadata: dict[str, _Source] = {}
    seen_files: set[str] = set()
    seen_dirs: set[str] = set()

    def add_metadata(path: str) -> str:
        path = os.path.normpath(path)  # one entry per file however it was reached
        if path not in metadata:
            data, error = _read(path)
            metadata[path] = _Source(path, data, error)
        return path

    def nearest_metadata(directory: str) -> str | None:
        """The metadata file in the closest directory above *directory* (its own is walk's business)."""
        absolute = Path(os.path.abspath(directory))
        for up, folder in enumerate(absolute.parents, start=1):
            if (folder / METADATA_FILE).is_file():
                return add_metadata(os.path.join(directory, *[".."] * up, METADATA_FILE))
        return None

    def add_file(path: str, applies: str | None) -> None:
        real = os.path.realpath(path)
        if real not in seen_files:
            seen_files.add(real)
            data, error = _read(path)
            sources.append(_Source(path, data, error, applies))

    def walk(directory: str, applies: str | None) -> None:
        real = os.path.realpath(directory)
        if real in seen_dirs:  # the same tree named twice, or a symlink loop
            return
        seen_dirs.add(real)
        own = os.path.join(directory, METADATA_FILE)
        if os.path.isfile(own):
            applies = add_metadata(own)
        try:
            entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
        except OSError as exc:
            sources.append(_Source(directory, None, exc.strerror or str(exc)))
            return
        for entry in entries:
            if entry.name.startswith(".") or entry.name == METADATA_FILE:
                continue
            path = os.path.join(directory, entry.name)
            if entry.is_dir():
                walk(path, applies)
            elif entry.is_file() and entry.name.endswith(_SUFFIXES):
                add_file(path, applies)

    for raw in paths:
        path = os.fspath(raw)
        if os.path.isdir(path):
            walk(path, nearest_metadata(path))
        elif os.path.basename(path) == METADATA_FILE:
            continue  # not a prescription file; it applies to the directory it is in
        elif os.path.exists(path):
            # As if walking its directory: a metadata file beside it applies, else the nearest above.
            directory = os.path.dirname(path) or "."
            beside = os.path.join(directory, METADATA_FILE)
            add_file(
                path,
                add_metadata(beside) if os.path.isfile(beside) else nearest_metadata(directory),
            )
        else:
            sources.append(_Source(path, None, "no such file or directory"))
    return sources, metadata


@functools.cache
def _code_version() -> bytes:
    """What the compiled form depends on besides the files: this package's code, packaging, Python.

    Part of every digest, so a cache entry written by other code is never read back as current.
    """
    code = hashlib.sha256(f"{sys.version_info[:2]} packaging {packaging.__version__}".encode())
    for module in sorted(Path(__file__).parent.glob("*.py")):
        code.update(module.name.encode() + b"\0" + module.read_bytes())
    return code.digest()


def _digest(sources: list[_Source], metadata: dict[str, _Source]) -> str:
    digest = hashlib.sha256(_code_version())

    def add(*parts: bytes) -> None:
        for part in parts:
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)

    for path, source in sorted(metadata.items()):
        add(
            b"metadata",
            path.encode(),
            source.data if source.data is not None else b"\0" + str(source.error).encode(),
        )
    for source in sources:
        content = source.data if source.data is not None else b"\0" + str(source.error).encode()
        add(b"rules", source.path.encode(), (source.metadata or "").encode(), content)
    return digest.hexdigest()


def _namespace(source: _Source, problems: list[Problem]) -> Namespace:
    """The namespace a ``_prescription_metadata.yaml`` sets: ``{prescription: {name, release}}``."""
    if source.data is None:
        problems.append(Problem(source.path, None, "", f"cannot read: {source.error}", "unreadable"))
        return Namespace()
    reader = Reader(source.path)
    try:
        root = _yaml.compose(source.data.decode("utf-8", errors="replace"))
    except yaml.YAMLError as exc:
        line, message = _yaml.syntax_error(exc)
        problems.append(Problem(source.path, line, "", message, "yaml"))
        return Namespace()
    name = release = DEFAULT_NAMESPACE
    if root is None:
        reader.report(None, "prescription", "the metadata file is empty; write prescription: {name, release}")
    else:
        fields = reader.fields(
            root, "", ("prescription",), ("prescription",), what="a mapping with prescription:"
        )
        if fields and "prescription" in fields:
            inner = reader.fields(fields["prescription"], "prescription", ("name", "release"))
            if inner and "name" in inner:
                name = reader.string(inner["name"], join("prescription", "name"), example="thoth") or name
            if inner and "release" in inner:
                release = (
                    reader.string(
                        inner["release"], join("prescription", "release"), numbers=True, example="2023.1"
                    )
                    or release
                )
    problems += [problem for _, problem in sorted(reader.problems, key=lambda pair: pair[0])]
    return Namespace(name, release)
