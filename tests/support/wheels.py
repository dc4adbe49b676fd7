"""Real distributions built on the fly: wheels (optionally with a compiled ELF) and sdists.

Everything is deterministic (fixed zip/tar timestamps, sorted entries) so the same arguments give the
same bytes and the same sha256; tests that need two different files under one name vary the content
(``extra_files``) on purpose.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import re
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

from packaging.tags import parse_tag
from packaging.utils import canonicalize_name
from packaging.version import Version

__all__ = [
    "build_sdist",
    "build_wheel",
    "dist_stem",
    "import_name",
    "native_tag",
    "read_wheel_metadata",
    "sha256_file",
]

_EMPTY: Mapping[str, bytes] = MappingProxyType({})
# Zip cannot store dates before 1980; a fixed date keeps builds byte-for-byte reproducible.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_GCC_TIMEOUT = 120


def native_tag() -> str:
    """``cpXY-cpXY-linux_<arch>`` for this interpreter: what a locally built extension is tagged,
    and a tag pip, uv and pipenv all accept on any Linux of this architecture."""
    xy = f"{sys.version_info.major}{sys.version_info.minor}"
    return f"cp{xy}-cp{xy}-" + sysconfig.get_platform().replace("-", "_").replace(".", "_")


def dist_stem(name: str) -> str:
    """The name as it appears in wheel/sdist filenames and .dist-info directories (PEP 427/625)."""
    return canonicalize_name(name).replace("-", "_")


def import_name(name: str) -> str:
    """The top-level package a built wheel installs: ``acme-utils`` -> ``acme_utils``."""
    return dist_stem(name)


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def _core_metadata(
    name: str, version: str, requires_dist: Sequence[str], requires_python: str | None
) -> bytes:
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    if requires_python is not None:
        lines.append(f"Requires-Python: {requires_python}")
    lines.extend(f"Requires-Dist: {req}" for req in requires_dist)
    lines.append(f"Summary: test distribution {name} {version}")
    return ("\n".join(lines) + "\n\n").encode()


def _compile_shared_object(source: str, flags: Sequence[str]) -> bytes:
    with tempfile.TemporaryDirectory(prefix="ext-") as tmp:
        src = Path(tmp) / "native.c"
        out = Path(tmp) / "native.so"
        src.write_text(source)
        proc = subprocess.run(
            ["gcc", "-shared", "-fPIC", "-O1", *flags, "-o", str(out), str(src)],
            capture_output=True,
            text=True,
            timeout=_GCC_TIMEOUT,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"gcc failed ({proc.returncode}):\n{proc.stderr}")
        return out.read_bytes()


def build_wheel(
    out_dir: Path,
    name: str,
    version: str,
    *,
    tag: str = "py3-none-any",
    requires_dist: Sequence[str] = (),
    requires_python: str | None = None,
    extension_c: str | None = None,
    extension_flags: Sequence[str] = (),
    extra_files: Mapping[str, bytes] = _EMPTY,
    metadata_name: str | None = None,
) -> Path:
    """Write ``<dist>-<version>-<tag>.whl`` into ``out_dir`` and return its path.

    ``extra_files`` maps archive paths to contents (e.g. ``{"acme/data.txt": b"x"}``); they are listed
    in RECORD like everything else. ``metadata_name`` puts a different Name into METADATA than the one
    the filename and dist-info directory use, to build deliberately inconsistent wheels.
    """
    # Validate early: a typo in a test's version would otherwise surface as a confusing client error.
    Version(version)
    tags = sorted(str(t) for t in parse_tag(tag))
    stem = dist_stem(name)
    pkg = import_name(name)
    dist_info = f"{stem}-{version}.dist-info"
    pure = extension_c is None

    files: dict[str, bytes] = {
        f"{pkg}/__init__.py": f'__version__ = "{version}"\n'.encode(),
    }
    if extension_c is not None:
        files[f"{pkg}/_native.so"] = _compile_shared_object(extension_c, extension_flags)
    files.update(extra_files)
    files[f"{dist_info}/METADATA"] = _core_metadata(
        metadata_name if metadata_name is not None else name, version, requires_dist, requires_python
    )
    wheel_lines = [
        "Wheel-Version: 1.0",
        "Generator: index-proxy-tests",
        f"Root-Is-Purelib: {'true' if pure else 'false'}",
        *(f"Tag: {t}" for t in tags),
    ]
    files[f"{dist_info}/WHEEL"] = ("\n".join(wheel_lines) + "\n").encode()

    record_path = f"{dist_info}/RECORD"
    record_rows = [f"{path},{_record_hash(data)},{len(data)}" for path, data in files.items()]
    record_rows.append(f"{record_path},,")
    files[record_path] = ("\n".join(record_rows) + "\n").encode()

    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{stem}-{version}-{tag}.whl"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path, data in files.items():
            info = zipfile.ZipInfo(path, date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            # rw-r--r-- for files, rwxr-xr-x for the shared object, as real build backends do.
            mode = 0o755 if path.endswith(".so") else 0o644
            info.external_attr = (0o100000 | mode) << 16
            zf.writestr(info, data)
    target.write_bytes(buffer.getvalue())
    return target


def read_wheel_metadata(path: Path) -> bytes:
    """The METADATA bytes of a wheel: what PEP 658 serves as ``<file>.metadata``."""
    with zipfile.ZipFile(path) as zf:
        candidates = [n for n in zf.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n) is not None]
        if len(candidates) != 1:
            raise ValueError(f"{path.name}: expected one .dist-info/METADATA, found {candidates}")
        return zf.read(candidates[0])


def build_sdist(out_dir: Path, name: str, version: str, *, requires_dist: Sequence[str] = ()) -> Path:
    """Write ``<dist>-<version>.tar.gz`` with PKG-INFO, pyproject.toml and setup.py."""
    Version(version)
    stem = f"{dist_stem(name)}-{version}"
    pkg = import_name(name)
    reqs = ", ".join(repr(r) for r in requires_dist)
    members: dict[str, bytes] = {
        f"{stem}/PKG-INFO": _core_metadata(name, version, requires_dist, None),
        f"{stem}/pyproject.toml": (
            '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n\n'
            f'[project]\nname = "{name}"\nversion = "{version}"\n'
            # A JSON array of strings is also a valid TOML array.
            f"dependencies = {json.dumps(list(requires_dist))}\n"
        ).encode(),
        f"{stem}/setup.py": (
            "from setuptools import setup\n\n"
            f"setup(name={name!r}, version={version!r}, packages=[{pkg!r}], install_requires=[{reqs}])\n"
        ).encode(),
        f"{stem}/{pkg}/__init__.py": f'__version__ = "{version}"\n'.encode(),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{stem}.tar.gz"
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for path, data in members.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            tf.addfile(info, io.BytesIO(data))
    # gzip stores a timestamp in its header; pin it so reruns produce identical archives.
    target.write_bytes(gzip.compress(raw.getvalue(), mtime=0))
    return target
