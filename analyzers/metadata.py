"""Core metadata (``METADATA`` / ``PKG-INFO``): parsing with every error kept, and name/version consistency.

PyPI rejects an upload whose filename, ``.dist-info`` directory and METADATA disagree on the project
name or version; a proxy that serves files from other indexes checks the same, since installers
trust the filename for resolution and METADATA for dependencies.
"""

from __future__ import annotations

from collections.abc import Iterator

from packaging.metadata import Metadata, RawMetadata, parse_email
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from analyzers.facts import CoreMetadataFacts, Finding

__all__ = ["check_consistency", "parse_core_metadata"]

_DIST_INFO_SUFFIX = ".dist-info"


def _flatten(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _flatten(exc)
        else:
            yield exc


def _unparsed_errors(unparsed: dict[str, list[str]]) -> list[str]:
    # parse_email puts both unknown headers and known headers with unusable values (a single-use
    # field given twice, undecodable bytes) here; both make the file invalid.
    return [f"unrecognized or invalid field: {key!r} = {values!r}" for key, values in unparsed.items()]


def _validated(raw: RawMetadata) -> tuple[Metadata | None, list[str]]:
    try:
        return Metadata.from_raw(raw, validate=True), []
    except ExceptionGroup as group:
        return None, [str(exc) for exc in _flatten(group)]


def _from_validated(source: str, metadata: Metadata) -> CoreMetadataFacts:
    return CoreMetadataFacts(
        source=source,
        metadata_version=metadata.metadata_version,
        name=metadata.name,
        version=str(metadata.version),
        requires_python=None if metadata.requires_python is None else str(metadata.requires_python),
        requires_dist=tuple(str(req) for req in metadata.requires_dist or ()),
        provides_extra=tuple(str(extra) for extra in metadata.provides_extra or ()),
    )


def _from_raw(source: str, raw: RawMetadata, errors: list[str]) -> CoreMetadataFacts:
    return CoreMetadataFacts(
        source=source,
        metadata_version=raw.get("metadata_version"),
        name=raw.get("name"),
        version=raw.get("version"),
        requires_python=raw.get("requires_python"),
        requires_dist=tuple(raw.get("requires_dist", ())),
        provides_extra=tuple(raw.get("provides_extra", ())),
        errors=tuple(dict.fromkeys(errors)),
    )


def parse_core_metadata(data: bytes, source: str) -> CoreMetadataFacts:
    """Parse METADATA/PKG-INFO bytes; ``source`` is ``"wheel"`` or ``"sdist"``.

    Every validation problem lands in ``errors`` (not just the first); when validation fails the
    raw, unvalidated name/version/requirements are kept so consistency checks can still run.
    """
    raw, unparsed = parse_email(data)
    metadata, errors = _validated(raw)
    errors = _unparsed_errors(unparsed) + errors
    if metadata is not None and not errors:
        return _from_validated(source, metadata)
    return _from_raw(source, raw, errors)


def _filename_identity(filename: str) -> tuple[str, str]:
    if filename.endswith(".whl"):
        name, version, _, _ = parse_wheel_filename(filename)
    else:
        name, version = parse_sdist_filename(filename)
    return name, str(version)


def _directory_identity(directory: str) -> tuple[str, str] | None:
    directory = directory.rstrip("/")
    if directory.endswith(_DIST_INFO_SUFFIX):
        # Escaped names (PEP 427) contain no hyphen, so the first one ends the name.
        name, sep, version = directory.removesuffix(_DIST_INFO_SUFFIX).partition("-")
    else:
        # An sdist's top-level directory may predate name escaping ("Foo-Bar-1.0"): versions
        # never contain a hyphen, names might.
        name, sep, version = directory.rpartition("-")
    return (name, version) if sep and name and version else None


def _same_version(left: str, right: str) -> bool:
    try:
        return Version(left) == Version(right)
    except InvalidVersion:
        return left == right


def _mismatches(label: str, reference: tuple[str, str], other: tuple[str, str]) -> list[Finding]:
    found: list[Finding] = []
    if canonicalize_name(reference[0]) != canonicalize_name(other[0]):
        found.append(
            Finding(
                "metadata-name-mismatch",
                "error",
                f"the filename names {reference[0]!r} but {label} names {other[0]!r}",
            )
        )
    if not _same_version(reference[1], other[1]):
        found.append(
            Finding(
                "metadata-version-mismatch",
                "error",
                f"the filename has version {reference[1]!r} but {label} has {other[1]!r}",
            )
        )
    return found


def _filename_findings(filename: str) -> tuple[tuple[str, str] | None, list[Finding]]:
    try:
        return _filename_identity(filename), []
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion) as error:
        return None, [Finding("invalid-filename", "error", str(error))]


def _directory_findings(reference: tuple[str, str], dist_info_dir: str | None) -> list[Finding]:
    if dist_info_dir is None:
        return []
    identity = _directory_identity(dist_info_dir)
    if identity is None:
        return [
            Finding(
                "metadata-name-mismatch",
                "error",
                f"directory {dist_info_dir!r} is not named <name>-<version>",
                path=dist_info_dir,
            )
        ]
    return _mismatches(f"directory {dist_info_dir!r}", reference, identity)


def _metadata_findings(reference: tuple[str, str] | None, metadata: CoreMetadataFacts) -> list[Finding]:
    # A warning, not an error: installers accept fields a Metadata-Version does not define (for
    # example License-File under 2.1); a wrong name or version is what makes a file unusable.
    found = [Finding("invalid-metadata", "warning", error) for error in metadata.errors]
    if reference is None or metadata.name is None or metadata.version is None:
        # An absent Name/Version is already an invalid-metadata error ("required field").
        return found
    return found + _mismatches("the core metadata", reference, (metadata.name, metadata.version))


def check_consistency(
    filename: str, dist_info_dir: str | None, metadata: CoreMetadataFacts | None
) -> list[Finding]:
    """Name and version must agree between the filename, the directory and the core metadata.

    ``dist_info_dir`` is a wheel's ``<name>-<version>.dist-info`` or an sdist's top-level
    ``<name>-<version>`` directory (``None``: not known, not compared). ``metadata`` ``None``
    means the METADATA/PKG-INFO file is absent ("missing-metadata").
    """
    reference, found = _filename_findings(filename)
    if reference is not None:
        found += _directory_findings(reference, dist_info_dir)
    if metadata is None:
        return [*found, Finding("missing-metadata", "error", "no core metadata file in the distribution")]
    return found + _metadata_findings(reference, metadata)
