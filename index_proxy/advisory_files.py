"""OSV files from a folder tree, a ``.zip`` or a ``.tar.gz``, parsed into records for the advisory store.

Archives are read in memory, member by member, never extracted, so a member's path cannot escape
anywhere. Hidden files and directories (a clone's ``.github/workflows/*.yml``) are not advisories
and are skipped, as is anything not ``.json``, ``.yaml`` or ``.yml``.
"""

from __future__ import annotations

import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from prescriptions.advisories import InvalidAdvisory, OsvRecord, parse_osv_text

__all__ = ["AdvisoryFiles", "UnreadableSource", "read_advisory_files"]

SUFFIXES = (".json", ".yaml", ".yml")
# Real records are a few kB; a member this large is a mistake or a zip bomb, not an advisory.
MAX_FILE_BYTES = 8 * 1024 * 1024


class UnreadableSource(Exception):
    """PATH is not a folder, .zip or .tar.gz that can be read."""


@dataclass(slots=True)
class AdvisoryFiles:
    records: list[OsvRecord] = field(default_factory=list)
    invalid: list[InvalidAdvisory] = field(default_factory=list)

    @property
    def files(self) -> int:
        return len(self.records) + len(self.invalid)


def read_advisory_files(path: Path) -> AdvisoryFiles:
    """Every OSV file under *path*, parsed; a file that is not a valid record lands in ``invalid``.

    :raises UnreadableSource: for a path that does not exist or is neither a folder nor an archive.
    """
    result = AdvisoryFiles()
    for name, content in _members(path):
        if content is None:
            result.invalid.append(InvalidAdvisory(name, "", f"larger than {MAX_FILE_BYTES} bytes; not read"))
            continue
        try:
            result.records.append(parse_osv_text(content, name))
        except InvalidAdvisory as error:
            result.invalid.append(error)
    return result


def _wanted(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return name.lower().endswith(SUFFIXES) and not any(part.startswith(".") for part in parts)


def _members(path: Path) -> Iterator[tuple[str, bytes | None]]:
    """(name for messages, bytes or None when too large), in name order."""
    lowered = path.name.lower()
    try:
        if path.is_dir():
            for file in sorted(path.rglob("*")):
                relative = file.relative_to(path).as_posix()
                if file.is_file() and _wanted(relative):
                    yield relative, None if file.stat().st_size > MAX_FILE_BYTES else file.read_bytes()
        elif path.is_file() and lowered.endswith(".zip"):
            with zipfile.ZipFile(path) as archive:
                for info in sorted(archive.infolist(), key=lambda i: i.filename):
                    if not info.is_dir() and _wanted(info.filename):
                        big = info.file_size > MAX_FILE_BYTES
                        yield f"{path.name}:{info.filename}", None if big else archive.read(info)
        elif path.is_file() and lowered.endswith((".tar.gz", ".tgz")):
            with tarfile.open(path, "r:gz") as archive:
                for member in sorted(archive.getmembers(), key=lambda m: m.name):
                    if member.isfile() and _wanted(member.name):
                        handle = archive.extractfile(member)
                        big = member.size > MAX_FILE_BYTES
                        data = None if big or handle is None else handle.read()
                        yield f"{path.name}:{member.name}", data
        elif path.exists():
            raise UnreadableSource(f"{path}: not a folder, a .zip or a .tar.gz of OSV files")
        else:
            raise UnreadableSource(f"{path}: no such file or directory")
    except (OSError, zipfile.BadZipFile, tarfile.TarError) as error:
        raise UnreadableSource(f"{path}: cannot read: {error}") from error
