"""A compile cache the caller holds: results by content digest, in memory and optionally on disk.

The loader asks it for the digest of what it read (see :func:`prescriptions.loader.load`); a hit
skips parsing, validation and compiling. On disk each result is one pickle named by its digest in
a directory the caller chooses and trusts (a pickle runs code when loaded: never point this at a
directory others can write). A file that cannot be read back counts as a miss.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from collections import OrderedDict
from pathlib import Path

__all__ = ["CompileCache"]


def __dir__() -> list[str]:
    return __all__


class CompileCache:
    """Results by digest: the *memory* most recent in this process, the *keep* most recent on disk.

    *directory* should be dedicated to this cache: other ``*.pickle`` files in it get pruned.
    """

    def __init__(
        self, directory: str | os.PathLike[str] | None = None, *, memory: int = 2, keep: int = 4
    ) -> None:
        self.directory = None if directory is None else Path(directory)
        self.keep = keep
        self.hits = 0
        self.misses = 0
        self._memory: OrderedDict[str, object] = OrderedDict()
        self._memory_size = memory

    def __repr__(self) -> str:
        return f"<CompileCache {self.directory or 'memory'}: {self.hits} hits, {self.misses} misses>"

    def _path(self, digest: str) -> Path:
        assert self.directory is not None
        return self.directory / f"{digest}.pickle"

    def get(self, digest: str) -> object | None:
        """The result stored for *digest*, or ``None``."""
        if digest in self._memory:
            self._memory.move_to_end(digest)
            self.hits += 1
            return self._memory[digest]
        if self.directory is not None:
            try:
                with self._path(digest).open("rb") as file:
                    value: object = pickle.load(file)
            except Exception:  # missing, truncated, or written by an incompatible version: a miss
                pass
            else:
                self._remember(digest, value)
                self.hits += 1
                return value
        self.misses += 1
        return None

    def put(self, digest: str, value: object) -> None:
        """Store *value* for *digest* (on disk atomically: readers never see half a file)."""
        self._remember(digest, value)
        if self.directory is None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".pickle")
        try:
            with os.fdopen(fd, "wb") as file:
                pickle.dump(value, file, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(temporary, self._path(digest))
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        self._prune()

    def _prune(self) -> None:
        """Drop all but the *keep* most recently written entries (other processes may race: fine)."""
        assert self.directory is not None
        entries = []
        for path in self.directory.glob("*.pickle"):
            if path.name.startswith(".tmp-"):
                continue
            try:
                entries.append((path.stat().st_mtime_ns, path))
            except OSError:
                continue
        for _, path in sorted(entries, reverse=True)[self.keep :]:
            path.unlink(missing_ok=True)

    def _remember(self, digest: str, value: object) -> None:
        if self._memory_size <= 0:
            return
        self._memory[digest] = value
        self._memory.move_to_end(digest)
        while len(self._memory) > self._memory_size:
            self._memory.popitem(last=False)
