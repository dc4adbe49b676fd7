"""SQLAlchemy models. Every change here needs an Alembic revision in ``migrations/versions``."""

from __future__ import annotations

from sqlalchemy import Boolean, Float, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "AdvisoryRow",
    "AnalysisFactsRow",
    "AnalysisJobRow",
    "Base",
    "FileRow",
    "GuardEventRow",
    "PulpCursorRow",
    "UpstreamPageRow",
]


class Base(DeclarativeBase):
    pass


class UpstreamPageRow(Base):
    """The last page an upstream gave for a project (``project == ""`` is the project list).

    ``payload`` holds our parsed form as JSON rather than the upstream's bytes, so a page is
    parsed once per change, not once per process start.
    """

    __tablename__ = "upstream_pages"

    index_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    project: Mapped[str] = mapped_column(String(300), primary_key=True)
    found: Mapped[bool] = mapped_column(Boolean, default=True)
    etag: Mapped[str | None] = mapped_column(String(500), nullable=True)
    fetched_at: Mapped[float] = mapped_column(Float)
    payload: Mapped[bytes] = mapped_column(LargeBinary)


class FileRow(Base):
    """A distribution file the proxy has listed, keyed by the id used in its ``/files/`` URL."""

    __tablename__ = "files"

    file_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    index_name: Mapped[str] = mapped_column(String(200))
    project: Mapped[str] = mapped_column(String(300), index=True)
    filename: Mapped[str] = mapped_column(String(500))
    upstream_url: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    size: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # JSON of the upstream's core-metadata value: null (unknown), false, true or {algo: hex}
    upstream_metadata: Mapped[str | None] = mapped_column(Text, nullable=True)
    metadata_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    stored: Mapped[bool] = mapped_column(Boolean, default=False)


class GuardEventRow(Base):
    """A file the merge dropped, and why; unique so a page refresh does not repeat it."""

    __tablename__ = "guard_events"
    __table_args__ = (
        UniqueConstraint("kind", "project", "filename", "index_name", name="uq_guard_event"),
        Index("ix_guard_events_at", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[float] = mapped_column(Float)
    kind: Mapped[str] = mapped_column(String(50))
    project: Mapped[str] = mapped_column(String(300))
    filename: Mapped[str] = mapped_column(String(500))
    index_name: Mapped[str] = mapped_column(String(200))
    kept_index: Mapped[str | None] = mapped_column(String(200), nullable=True)
    detail: Mapped[str] = mapped_column(Text, default="")


class AnalysisJobRow(Base):
    """One file to analyse. Workers lease rows; a lease that runs out is taken by another worker."""

    __tablename__ = "analysis_jobs"
    __table_args__ = (Index("ix_analysis_jobs_state", "state", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    file_id: Mapped[str] = mapped_column(String(100), unique=True)
    reason: Mapped[str] = mapped_column(String(50))
    state: Mapped[str] = mapped_column(String(20), default="queued")  # queued | leased | done | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lease_expires: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class AnalysisFactsRow(Base):
    """The analyzers' facts for one file content (keyed by sha256: the same bytes, the same facts)."""

    __tablename__ = "analysis_facts"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    schema: Mapped[int] = mapped_column(Integer)
    filename: Mapped[str] = mapped_column(String(500))
    analyzed_at: Mapped[float] = mapped_column(Float)
    broken: Mapped[bool] = mapped_column(Boolean)
    mis_tagged: Mapped[bool] = mapped_column(Boolean)
    facts: Mapped[str] = mapped_column(Text)


class AdvisoryRow(Base):
    """One security advisory (an OSV record) as it applies to one package.

    A record naming several packages has one row each, all with its id and ``modified`` time; an
    import replaces all of a record's rows at once when its ``modified`` is newer.
    """

    __tablename__ = "advisories"
    __table_args__ = (Index("ix_advisories_package", "package"),)

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    package: Mapped[str] = mapped_column(String(300), primary_key=True)
    modified: Mapped[float] = mapped_column(Float)  # the record's ``modified``, seconds since the epoch
    withdrawn: Mapped[bool] = mapped_column(Boolean)
    imported_at: Mapped[float] = mapped_column(Float)
    advisory: Mapped[str] = mapped_column(Text)  # prescriptions.advisories.Advisory.to_json()


class PulpCursorRow(Base):
    """How far a Pulp index's repository has been read: its newest repository version seen.

    The repository's href is kept with the number: a repository deleted and made again under the
    same name starts numbering at 0, and must be read from the start again.
    """

    __tablename__ = "pulp_cursors"

    index_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    repository_href: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[float] = mapped_column(Float)
