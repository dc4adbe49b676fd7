"""Configuration: one YAML file, validated at start, every problem reported with file, line and key.

The file is read with ``yaml.compose`` rather than ``yaml.safe_load``: nodes keep their position, so
a problem deep in the file can still name the line it sits on.  Validation never stops at the first
problem; all of them are collected and raised together in one :class:`ConfigError`.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import functools
import json
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal, NamedTuple, cast, get_args
from urllib.parse import urlsplit, urlunsplit
from urllib.request import url2pathname

import yaml
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

__all__ = [
    "CPU_LEVELS",
    "Config",
    "ConfigError",
    "ConfigProblem",
    "HardwareSpec",
    "IndexConfig",
    "IndexKind",
    "MonitorRule",
    "S3Config",
    "ServerConfig",
    "StorageConfig",
    "default_config",
    "glob_matches",
    "load_config",
    "parse_config",
]


def __dir__() -> list[str]:
    return __all__


IndexKind = Literal["simple", "pulp", "folder"]
"""How an upstream is read: a PEP 503/691 index, a Pulp distribution, or a local folder of files."""

CPU_LEVELS = ("x86_64", "x86_64_v2", "x86_64_v3", "x86_64_v4")
"""The x86-64 psABI micro-architecture levels a ``cpu_level`` may name."""

ADMIN_TOKEN_ENV = "INDEX_PROXY_ADMIN_TOKEN"


@dataclass(frozen=True, slots=True)
class HardwareSpec:
    """What a machine has (a profile) or what files need (an index's ``hardware``)."""

    cpu_features: tuple[str, ...] = ()
    cpu_level: str | None = None
    cuda: str | None = None


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str | None = None
    admin_token: str | None = None
    page_ttl: float = 600.0
    default_profile: str | None = None
    # Analysis: in-process workers (0: only ``index-proxy worker`` processes analyse), how often
    # monitored indexes are polled, and how long a leased job may run before another worker takes it.
    analysis_workers: int = 1
    monitor_interval: float = 300.0
    analysis_lease: float = 300.0
    # How long a resolve request may search for a better-scoring resolution than the first one
    # (recommendation types other than ``latest``); a request may ask for less, or more up to 30 s.
    search_budget: float = 1.0


S3AddressingStyle = Literal["auto", "path", "virtual"]


@dataclass(frozen=True, slots=True)
class S3Config:
    """How an ``s3://`` blob store is reached; credentials come from the environment, as boto reads them."""

    endpoint_url: str | None = None
    """An S3-compatible server (MinIO, Ceph, moto); ``None``: ``AWS_ENDPOINT_URL`` or AWS itself."""
    region: str | None = None
    """``None``: ``AWS_REGION`` / ``AWS_DEFAULT_REGION``, else boto's default."""
    addressing_style: S3AddressingStyle = "auto"
    """``path`` (``host/bucket/key``) suits most self-hosted servers; ``virtual`` is ``bucket.host/key``."""


@dataclass(frozen=True, slots=True)
class StorageConfig:
    database: str
    """An async SQLAlchemy URL (``sqlite+aiosqlite:///<abs path>``, ``postgresql+asyncpg://...``)."""
    blobs: str
    """An absolute folder path, or ``s3://bucket/prefix``."""
    s3: S3Config = S3Config()


@dataclass(frozen=True, slots=True)
class IndexConfig:
    name: str
    url: str
    """http(s) URL ending in ``/``; ``"pip"``; or, for kind ``folder``, an absolute directory path."""
    kind: IndexKind = "simple"
    owns: tuple[str, ...] = ()
    """Normalized globs (see :func:`glob_matches`) of names only this index may serve."""
    only: tuple[str, ...] | None = None
    """Normalized globs of the projects this index may contribute; ``None`` means any."""
    hardware: HardwareSpec | None = None
    """Set for variant sources: their files are for machines with this hardware only."""
    ttl: float | None = None
    timeout: float = 10.0
    retries: int = 2
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    api_url: str | None = None
    """Kind ``pulp``: Pulp's REST API root (``.../pulp/api/v3/``), where new content is discovered."""
    repository: str | None = None
    """Kind ``pulp``: the name of the Pulp repository whose new versions are watched."""

    @property
    def watches_pulp(self) -> bool:
        """Whether new content is discovered through Pulp's REST API (not only through its plugin)."""
        return self.kind == "pulp" and self.api_url is not None and self.repository is not None


@dataclass(frozen=True, slots=True)
class MonitorRule:
    index: str
    projects: tuple[str, ...] = ("*",)
    versions: str | None = None


@dataclass(frozen=True, slots=True)
class Config:
    server: ServerConfig
    storage: StorageConfig
    indexes: tuple[IndexConfig, ...]
    profiles: Mapping[str, HardwareSpec] = field(default_factory=lambda: MappingProxyType({}))
    monitor: tuple[MonitorRule, ...] = ()
    prescriptions: tuple[str, ...] = ()
    source: str | None = None
    """The file the configuration came from; ``None`` for :func:`default_config`."""

    def index(self, name: str) -> IndexConfig:
        """The index called *name*; :raises KeyError: when there is none."""
        for index in self.indexes:
            if index.name == name:
                return index
        raise KeyError(name)


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    file: str
    line: int | None
    """1-based; ``None`` when the problem has no place in the file (e.g. the file is unreadable)."""
    key: str
    """Where in the document, e.g. ``indexes[1].owns[0]``; empty for the document itself."""
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class ConfigError(ValueError):
    """The configuration is invalid; :attr:`problems` lists every problem found, in file order."""

    def __init__(self, problems: Iterable[ConfigProblem]) -> None:
        self.problems: list[ConfigProblem] = list(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


def load_config(path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate the YAML file at *path*; relative paths in it resolve against its folder.

    :param environ: where ``INDEX_PROXY_ADMIN_TOKEN`` and ``password_env`` variables are read;
        defaults to :data:`os.environ`.
    :raises ConfigError: with every problem found, including an unreadable file.
    """
    source = os.fspath(path)
    try:
        text = Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError([ConfigProblem(source, None, "", f"cannot read the file: {reason}")]) from None
    return parse_config(text, source, Path(source).parent, environ=environ)


def parse_config(
    text: str,
    source: str = "<config>",
    base_dir: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Validate YAML *text*; *source* names it in problems, *base_dir* (default: cwd) anchors paths.

    :raises ConfigError: with every problem found.
    """
    reader = _Reader(source, Path(os.path.abspath(base_dir or Path.cwd())), environ)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        raise ConfigError([_syntax_problem(source, exc)]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([ConfigProblem(source, None, "", f"not valid YAML: {exc}")]) from None
    config = reader.document(root)
    if reader.problems:
        ordered = sorted(zip(reader.offsets, reader.problems, strict=True), key=lambda pair: pair[0])
        raise ConfigError(problem for _, problem in ordered)
    return config


_DEFAULT_TEXT = "indexes: [{name: pypi, url: pip}]\n"


def default_config(base_dir: Path | None = None, *, environ: Mapping[str, str] | None = None) -> Config:
    """The configuration used without a file: pip's configured index, SQLite and blobs under ./var."""
    # Going through the parser keeps one definition of every default and of path resolution.
    return dataclasses.replace(
        parse_config(_DEFAULT_TEXT, "<default>", base_dir, environ=environ), source=None
    )


_SEPARATOR_RUNS = re.compile(r"[-_.]+")
_STAR_RUNS = re.compile(r"\*+")


@functools.lru_cache(maxsize=4096)
def _normalize_glob(pattern: str) -> str:
    # Cached: routing calls this for every (pattern, project) pair on the request path.
    return _STAR_RUNS.sub("*", _SEPARATOR_RUNS.sub("-", pattern.lower()))


def glob_matches(patterns: Iterable[str], name: str) -> bool:
    """Whether any glob in *patterns* matches project *name*, both compared PEP 503-normalized.

    >>> glob_matches(["foo-bar-*"], "Foo.Bar_baz")
    True
    """
    canonical = canonicalize_name(name)
    return any(fnmatch.fnmatchcase(canonical, _normalize_glob(pattern)) for pattern in patterns)


# --- reading ----------------------------------------------------------------------------------------

_TAG = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _NULL, _MERGE = (_TAG + name for name in ("str", "int", "float", "null", "merge"))
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_FEATURE = re.compile(r"[a-z0-9][a-z0-9_.]*")
_CUDA = re.compile(r"[0-9]+\.[0-9]+")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_KINDS: tuple[str, ...] = get_args(IndexKind)
_TOP_KEYS = ("server", "storage", "indexes", "profiles", "monitor", "prescriptions")
_SERVER_KEYS = (
    "host",
    "port",
    "public_url",
    "admin_token",
    "page_ttl",
    "default_profile",
    "analysis_workers",
    "monitor_interval",
    "analysis_lease",
    "search_budget",
)
_STORAGE_KEYS = ("database", "blobs", "s3")
_S3_KEYS = ("endpoint_url", "region", "addressing_style")
_S3_STYLES: tuple[str, ...] = get_args(S3AddressingStyle)
_INDEX_KEYS = (
    "name",
    "url",
    "kind",
    "owns",
    "only",
    "hardware",
    "ttl",
    "timeout",
    "retries",
    "username",
    "password",
    "password_env",
    "api_url",
    "repository",
)
_INDEXES_EXAMPLE = "indexes: [{name: pypi, url: pip}]"
_HARDWARE_KEYS = ("cpu_features", "cpu_level", "cuda")
_MONITOR_KEYS = ("index", "projects", "versions")
# Only drivers that SQLAlchemy's asyncio extension can run; the first is used for a bare dialect.
_ASYNC_DRIVERS = {"sqlite": ("aiosqlite",), "postgresql": ("asyncpg", "psycopg")}


class _Glob(NamedTuple):
    pattern: str
    text: str
    node: yaml.Node
    key: str


class _Owned(NamedTuple):
    position: int
    index: str
    glob: _Glob


def _q(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _line(node: yaml.Node) -> int:
    return cast(int, node.start_mark.line) + 1


def _join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name


def _is_null(node: yaml.Node | None) -> bool:
    return node is None or (isinstance(node, yaml.ScalarNode) and node.tag == _NULL)


def _describe(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if node.tag == _NULL:
        return "nothing"
    if node.tag == _STR:
        return _q(node.value)
    if not node.tag.startswith(_TAG):
        return f"a value tagged {node.tag}"
    return str(node.value)


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    choices = list(choices)
    close = difflib.get_close_matches(word, choices, n=1)
    # difflib misses a valid key with a suffix added, like "cuda_version" for "cuda".
    close = close or [choice for choice in choices if len(choice) >= 3 and word.startswith(choice)]
    return f"; did you mean {_q(close[0])}?" if close else ""


def _syntax_problem(source: str, exc: yaml.MarkedYAMLError) -> ConfigProblem:
    mark = exc.problem_mark or exc.context_mark
    message = f"invalid YAML: {exc.problem or exc.context}"
    if exc.context and exc.problem and exc.problem.startswith("but "):
        # The composer phrases some problems as the second half of the context's sentence.
        message = f"invalid YAML: {exc.context}, {exc.problem}"
    elif exc.context and exc.problem and exc.context_mark is not None:
        message += f" ({exc.context} at line {exc.context_mark.line + 1})"
    hint = "indent with spaces, not tabs" if "\\t" in message else "check the indentation and quoting here"
    return ConfigProblem(source, mark.line + 1 if mark else None, "", f"{message}; {hint}")


def _resolve_path(text: str, base_dir: Path) -> Path:
    # abspath rather than resolve(): normalize ".." but keep symlinks the operator chose.
    return Path(os.path.abspath(base_dir / Path(text).expanduser()))


def _http_url_error(text: str) -> str | None:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https"):
        return f"{_q(text)} is not an http(s) URL"
    try:
        if not parts.hostname:
            return f"{_q(text)} has no host"
        parts.port  # noqa: B018 - evaluated only for the ValueError a malformed port raises
    except ValueError:
        return f"{_q(text)} has an invalid port"
    return None


def _database_url(text: str, base_dir: Path) -> str:
    example = "e.g. sqlite:///var/index-proxy.db or postgresql://user@db.example/index_proxy"
    try:
        url = make_url(text)
    except ArgumentError:
        raise ValueError(f"{_q(text)} is not a database URL; write {example}") from None
    dialect, _, driver = url.drivername.partition("+")
    # "postgres://" is what many hosting platforms hand out, though SQLAlchemy no longer accepts it.
    dialect = "postgresql" if dialect == "postgres" else dialect
    drivers = _ASYNC_DRIVERS.get(dialect)
    if drivers is None:
        raise ValueError(f"unsupported database {_q(url.drivername)}; write {example}")
    if driver and driver not in drivers:
        raise ValueError(
            f"driver {_q(driver)} cannot run under asyncio; write {dialect}:// or {dialect}+{drivers[0]}://"
        )
    drivername = f"{dialect}+{driver or drivers[0]}"
    database = url.database
    if dialect == "sqlite" and database and database != ":memory:" and not database.startswith("file:"):
        resolved = str(_resolve_path(database, base_dir))
        if resolved != database:
            return url.set(drivername=drivername, database=resolved).render_as_string(hide_password=False)
    # Otherwise only the scheme changes: keep the rest byte for byte (quoting, query, password).
    return drivername + text[text.index("://") :]


def _blobs_location(text: str, base_dir: Path) -> str:
    if "://" not in text:
        return str(_resolve_path(text, base_dir))
    parts = urlsplit(text)
    if parts.scheme != "s3":
        raise ValueError(f"unsupported blob store {_q(text)}; write a folder path or s3://bucket/prefix")
    if not parts.netloc:
        raise ValueError(f"{_q(text)} names no bucket; write s3://bucket/prefix")
    if not _BUCKET.fullmatch(parts.netloc):
        raise ValueError(
            f"{_q(parts.netloc)} is not a valid bucket name: 3 to 63 lowercase letters, digits, '.' and '-',"
            " starting and ending with a letter or digit"
        )
    if parts.query or parts.fragment:
        raise ValueError(f"{_q(text)}: write s3://bucket/prefix without '?' or '#'")
    return text


class _Reader:
    """Walks the composed document, collecting problems; invalid values fall back to defaults."""

    def __init__(self, source: str, base_dir: Path, environ: Mapping[str, str] | None) -> None:
        self.source = source
        self.base_dir = base_dir
        self.environ: Mapping[str, str] = os.environ if environ is None else environ
        self.problems: list[ConfigProblem] = []
        # Character offsets of the problems: cross-checks and per-item passes report out of order,
        # and the reader wants them in the order of the file.
        self.offsets: list[int] = []
        self._constructor = yaml.constructor.SafeConstructor()

    def report(self, node: yaml.Node | None, key: str, message: str) -> None:
        line = None if node is None else _line(node)
        self.offsets.append(-1 if node is None else cast(int, node.start_mark.index))
        self.problems.append(ConfigProblem(self.source, line, key, message))

    # -- generic shapes --

    def entries(self, node: yaml.Node | None, key: str, what: str) -> list[tuple[str, yaml.Node, yaml.Node]]:
        """(name, key node, value node) of a mapping; null counts as empty, duplicates are reported."""
        if _is_null(node):
            return []
        assert node is not None
        if not isinstance(node, yaml.MappingNode):
            self.report(node, key, f"expected {what}, got {_describe(node)}")
            return []
        seen: dict[str, yaml.Node] = {}
        for key_node, _ in node.value:
            # Only the mapping's own keys: a key that overrides one merged in by "<<" is intended.
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != _MERGE:
                if key_node.value in seen:
                    first = _line(seen[key_node.value])
                    self.report(
                        key_node,
                        _join(key, key_node.value),
                        f"duplicate key (first at line {first}); keep one",
                    )
                seen.setdefault(key_node.value, key_node)
        try:
            # Resolves "<<: *anchor" merge keys, which compose() leaves in place; own keys come last.
            self._constructor.flatten_mapping(node)
        except (yaml.YAMLError, RecursionError) as exc:
            self.report(node, key, f"cannot merge keys here: {exc}")
            return []
        entries: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                entries[key_node.value] = (key_node, value_node)
            else:
                self.report(key_node, key, f"keys must be plain names, got {_describe(key_node)}")
        return [(name, key_node, value_node) for name, (key_node, value_node) in entries.items()]

    def mapping(
        self, node: yaml.Node | None, key: str, allowed: Sequence[str], required: Sequence[str] = ()
    ) -> dict[str, yaml.Node]:
        what = "a mapping of " + ", ".join(allowed)
        fields: dict[str, yaml.Node] = {}
        for name, key_node, value_node in self.entries(node, key, what):
            if name in allowed:
                fields[name] = value_node
            else:
                hint = _did_you_mean(name, allowed)
                self.report(
                    key_node, _join(key, name), f"unknown key{hint} (valid keys: {', '.join(allowed)})"
                )
        if isinstance(node, yaml.MappingNode):
            for name in required:
                if name not in fields:
                    self.report(node, _join(key, name), "missing required key")
        return fields

    def string(
        self, node: yaml.Node | None, key: str, example: str, *, required: bool = False, numbers: bool = False
    ) -> str | None:
        """A non-empty string; with *numbers*, an unquoted number is taken as written (``12.10``)."""
        if _is_null(node):
            if required and node is not None:
                self.report(node, key, f"a value is required; e.g. {example}")
            return None
        assert node is not None
        tags = (_STR, _INT, _FLOAT) if numbers else (_STR,)
        if not isinstance(node, yaml.ScalarNode) or node.tag not in tags:
            self.report(node, key, f"expected a string, got {_describe(node)}; e.g. {example}")
            return None
        if not node.value.strip():
            self.report(node, key, f"must not be empty; e.g. {example}")
            return None
        return cast(str, node.value)

    def integer(
        self, node: yaml.Node | None, key: str, low: int, high: int, default: int, example: str
    ) -> int:
        if _is_null(node):
            return default
        assert node is not None
        if isinstance(node, yaml.ScalarNode) and node.tag == _INT:
            value = cast(int, self._constructor.construct_yaml_int(node))
            if low <= value <= high:
                return value
        self.report(
            node, key, f"expected a whole number from {low} to {high}, got {_describe(node)}; e.g. {example}"
        )
        return default

    def seconds(
        self, node: yaml.Node | None, key: str, default: float | None, example: str, *, positive: bool = False
    ) -> float | None:
        if _is_null(node):
            return default
        assert node is not None
        if isinstance(node, yaml.ScalarNode) and node.tag in (_INT, _FLOAT):
            value = float(self._constructor.construct_object(node))
            if math.isfinite(value) and (value > 0 if positive else value >= 0):
                return value
        what = "a number of seconds above 0" if positive else "a number of seconds, 0 or more"
        self.report(node, key, f"expected {what}, got {_describe(node)}; e.g. {example}")
        return default

    def strings(
        self, node: yaml.Node | None, key: str, example: str
    ) -> list[tuple[str, yaml.Node, str]] | None:
        """(text, node, key) per item of a list of strings; ``None`` when absent or invalid."""
        if _is_null(node):
            return None
        assert node is not None
        if not isinstance(node, yaml.SequenceNode):
            self.report(node, key, f"expected a list, got {_describe(node)}; e.g. {example}")
            return None
        items = []
        for position, item in enumerate(node.value):
            item_key = f"{key}[{position}]"
            text = self.string(item, item_key, example, required=True)
            if text is not None:
                items.append((text, item, item_key))
        return items

    def globs(self, node: yaml.Node | None, key: str, example: str) -> list[_Glob] | None:
        items = self.strings(node, key, example)
        if items is None:
            return None
        valid = []
        for text, item, item_key in items:
            problem = _glob_problem(text)
            if problem:
                self.report(item, item_key, problem)
            else:
                valid.append(_Glob(_normalize_glob(text), text, item, item_key))
        return valid

    def name(self, node: yaml.Node | None, key: str, example: str) -> str | None:
        text = self.string(node, key, example, required=True)
        if text is not None and not _NAME.fullmatch(text):
            rule = "start with a letter or digit and use only letters, digits, '.', '_' and '-'"
            self.report(node, key, f"{_q(text)} is not a valid name: {rule}")
        return text

    # -- sections --

    def document(self, root: yaml.Node | None) -> Config:
        if root is None:
            self.report(None, "indexes", f"missing required key; e.g. {_INDEXES_EXAMPLE}")
        elif not isinstance(root, yaml.MappingNode):
            sections = ", ".join(_TOP_KEYS)
            self.report(
                root, "", f"the top level must be a mapping of sections ({sections}), got {_describe(root)}"
            )
            root = None
        fields = self.mapping(root, "", _TOP_KEYS, required=("indexes",))
        profiles = self.profiles(fields.get("profiles"))
        server = self.server(fields.get("server"), profiles)
        storage = self.storage(fields.get("storage"))
        indexes = self.indexes(fields.get("indexes"))
        monitor = self.monitor(fields.get("monitor"), {index.name for index in indexes if index.name})
        prescriptions = self.strings(fields.get("prescriptions"), "prescriptions", "prescriptions: [rules/]")
        return Config(
            server=server,
            storage=storage,
            indexes=tuple(indexes),
            profiles=MappingProxyType(profiles),
            monitor=tuple(monitor),
            prescriptions=tuple(
                str(_resolve_path(text, self.base_dir)) for text, _, _ in prescriptions or ()
            ),
            source=self.source,
        )

    def server(self, node: yaml.Node | None, profiles: Mapping[str, HardwareSpec]) -> ServerConfig:
        fields = self.mapping(node, "server", _SERVER_KEYS)
        defaults = ServerConfig()
        public_url = self.string(fields.get("public_url"), "server.public_url", "https://packages.example")
        if public_url is not None:
            problem = _http_url_error(public_url)
            if problem:
                self.report(
                    fields["public_url"],
                    "server.public_url",
                    f"{problem}; it must be the absolute URL clients use, e.g. https://packages.example",
                )
            # Stored without a trailing "/" so callers can append "/simple/" and the like.
            public_url = public_url.rstrip("/")
        default_profile = self.string(fields.get("default_profile"), "server.default_profile", "avx2-box")
        if default_profile is not None and default_profile not in profiles:
            known = ", ".join(profiles) or "none are defined"
            self.report(
                fields["default_profile"],
                "server.default_profile",
                f"no profile is named {_q(default_profile)}{_did_you_mean(default_profile, profiles)}"
                f" (profiles: {known}); define it under profiles: or remove default_profile",
            )
        admin_token = self.string(fields.get("admin_token"), "server.admin_token", '"s3cret"', numbers=True)
        return ServerConfig(
            host=self.string(fields.get("host"), "server.host", "0.0.0.0") or defaults.host,
            port=self.integer(fields.get("port"), "server.port", 1, 65535, defaults.port, "8000"),
            public_url=public_url,
            # The environment wins so a secret need not be written into a file that gets shared.
            admin_token=self.environ.get(ADMIN_TOKEN_ENV) or admin_token,
            page_ttl=cast(
                float, self.seconds(fields.get("page_ttl"), "server.page_ttl", defaults.page_ttl, "600")
            ),
            default_profile=default_profile,
            analysis_workers=self.integer(
                fields.get("analysis_workers"),
                "server.analysis_workers",
                0,
                64,
                defaults.analysis_workers,
                "1",
            ),
            monitor_interval=cast(
                float,
                self.seconds(
                    fields.get("monitor_interval"),
                    "server.monitor_interval",
                    defaults.monitor_interval,
                    "300",
                ),
            ),
            analysis_lease=cast(
                float,
                self.seconds(
                    fields.get("analysis_lease"), "server.analysis_lease", defaults.analysis_lease, "300"
                ),
            ),
            search_budget=cast(
                float,
                self.seconds(
                    fields.get("search_budget"), "server.search_budget", defaults.search_budget, "1"
                ),
            ),
        )

    def storage(self, node: yaml.Node | None) -> StorageConfig:
        fields = self.mapping(node, "storage", _STORAGE_KEYS)
        database = self.string(fields.get("database"), "storage.database", "sqlite:///var/index-proxy.db")
        blobs = self.string(fields.get("blobs"), "storage.blobs", "var/blobs or s3://bucket/prefix")
        try:
            database = _database_url(database or "sqlite:///var/index-proxy.db", self.base_dir)
        except ValueError as exc:
            self.report(fields.get("database"), "storage.database", str(exc))
        try:
            blobs = _blobs_location(blobs or "var/blobs", self.base_dir)
        except ValueError as exc:
            self.report(fields.get("blobs"), "storage.blobs", str(exc))
        s3 = S3Config()
        if not _is_null(fields.get("s3")):
            s3 = self.s3(fields["s3"])
            if blobs is not None and "://" not in blobs:
                self.report(
                    fields["s3"],
                    "storage.s3",
                    "applies to an S3 blob store only, and storage.blobs is a folder;"
                    " write storage.blobs: s3://bucket/prefix or remove storage.s3",
                )
        return StorageConfig(database=cast(str, database), blobs=cast(str, blobs), s3=s3)

    def s3(self, node: yaml.Node) -> S3Config:
        fields = self.mapping(node, "storage.s3", _S3_KEYS)
        endpoint_url = self.string(
            fields.get("endpoint_url"), "storage.s3.endpoint_url", "http://minio.example:9000"
        )
        if endpoint_url is not None:
            problem = _http_url_error(endpoint_url)
            if problem is None and urlsplit(endpoint_url).path.strip("/"):
                problem = f"{_q(endpoint_url)} has a path; the bucket belongs in storage.blobs"
            if problem:
                self.report(
                    fields["endpoint_url"],
                    "storage.s3.endpoint_url",
                    f"{problem}; write the server's base URL, e.g. http://minio.example:9000",
                )
                endpoint_url = None
        region = self.string(fields.get("region"), "storage.s3.region", "us-east-1")
        style = self.string(fields.get("addressing_style"), "storage.s3.addressing_style", "path") or "auto"
        if style not in _S3_STYLES:
            self.report(
                fields["addressing_style"],
                "storage.s3.addressing_style",
                f"unknown style {_q(style)}{_did_you_mean(style, _S3_STYLES)}"
                f" (one of {', '.join(_S3_STYLES)}); most self-hosted servers want path",
            )
            style = "auto"
        return S3Config(
            endpoint_url=endpoint_url.rstrip("/") if endpoint_url else None,
            region=region,
            addressing_style=cast(S3AddressingStyle, style),
        )

    def hardware(self, node: yaml.Node | None, key: str) -> HardwareSpec:
        fields = self.mapping(node, key, _HARDWARE_KEYS)
        features: list[str] = []
        for text, item, item_key in (
            self.strings(fields.get("cpu_features"), f"{key}.cpu_features", "[avx2, fma]") or ()
        ):
            feature = text.lower()
            if not _FEATURE.fullmatch(feature):
                self.report(
                    item, item_key, f"{_q(text)} is not a CPU feature name; e.g. avx2, avx512f, sse4_2"
                )
            elif feature not in features:
                features.append(feature)
        level = self.string(fields.get("cpu_level"), f"{key}.cpu_level", "x86_64_v3")
        if level is not None:
            # Accept the psABI spelling "x86-64-v3" too: it is what the ABI document and GCC use.
            level = level.lower().replace("-", "_")
            if level not in CPU_LEVELS:
                self.report(
                    fields["cpu_level"],
                    f"{key}.cpu_level",
                    f"unknown CPU level {_q(level)}{_did_you_mean(level, CPU_LEVELS)}"
                    f" (one of {', '.join(CPU_LEVELS)})",
                )
        cuda = self.string(fields.get("cuda"), f"{key}.cuda", '"12.1"', numbers=True)
        if cuda is not None and not _CUDA.fullmatch(cuda):
            self.report(
                fields["cuda"],
                f"{key}.cuda",
                f'{_q(cuda)} is not a CUDA version; write "MAJOR.MINOR" in quotes, e.g. "12.1"',
            )
        return HardwareSpec(tuple(features), level, cuda)

    def profiles(self, node: yaml.Node | None) -> dict[str, HardwareSpec]:
        profiles: dict[str, HardwareSpec] = {}
        for name, key_node, value_node in self.entries(
            node, "profiles", "a mapping of profile name to hardware"
        ):
            key = f"profiles.{name}"
            self.name(key_node, key, "avx2-box")
            profiles[name] = self.hardware(value_node, key)
        return profiles

    def indexes(self, node: yaml.Node | None) -> list[IndexConfig]:
        example = _INDEXES_EXAMPLE
        if node is None:
            return []
        if not isinstance(node, yaml.SequenceNode):
            self.report(node, "indexes", f"expected a list of indexes, got {_describe(node)}; e.g. {example}")
            return []
        if not node.value:
            self.report(node, "indexes", f"list at least one index; e.g. {example}")
        indexes: list[IndexConfig] = []
        names: dict[str, str] = {}
        owned: list[_Owned] = []
        for position, item in enumerate(node.value):
            key = f"indexes[{position}]"
            fields = self.mapping(item, key, _INDEX_KEYS, required=("name", "url"))
            index, owns = self.index(fields, key)
            if index.name in names:
                self.report(
                    fields["name"],
                    f"{key}.name",
                    f"{_q(index.name)} is already the name of {names[index.name]}; names must be unique",
                )
            elif index.name:
                names[index.name] = f"{key} (line {_line(fields['name'])})"
            owned.extend(_Owned(position, index.name, glob) for glob in owns)
            indexes.append(index)
        self.owner_conflicts(owned)
        return indexes

    def index(self, fields: dict[str, yaml.Node], key: str) -> tuple[IndexConfig, list[_Glob]]:
        name = self.name(fields.get("name"), f"{key}.name", "internal") or ""
        kind = self.string(fields.get("kind"), f"{key}.kind", "simple") or "simple"
        if kind not in _KINDS:
            self.report(
                fields["kind"],
                f"{key}.kind",
                f"unknown kind {_q(kind)}{_did_you_mean(kind, _KINDS)} (one of {', '.join(_KINDS)})",
            )
            kind = "simple"
        url = self.string(
            fields.get("url"), f"{key}.url", "https://pulp.example/pypi/internal/simple/", required=True
        )
        if url is not None:
            try:
                url = self.index_url(url, kind)
            except ValueError as exc:
                self.report(fields["url"], f"{key}.url", str(exc))
        owns = self.globs(fields.get("owns"), f"{key}.owns", '["acme-*"]')
        only = self.globs(fields.get("only"), f"{key}.only", '["tensorflow"]')
        hardware = (
            None if _is_null(fields.get("hardware")) else self.hardware(fields["hardware"], f"{key}.hardware")
        )
        username = self.string(fields.get("username"), f"{key}.username", "ci-reader", numbers=True)
        password = self.password(fields, key)
        if password is not None and username is None:
            secret = "password" if "password" in fields else "password_env"
            self.report(
                fields[secret], f"{key}.{secret}", "a password needs a username; add username: to this index"
            )
        api_url, repository = self.pulp_api(fields, key, kind)
        index = IndexConfig(
            name=name,
            url=url or "",
            kind=cast(IndexKind, kind),
            owns=tuple(glob.pattern for glob in owns or ()),
            only=None if only is None else tuple(glob.pattern for glob in only),
            hardware=hardware,
            ttl=self.seconds(fields.get("ttl"), f"{key}.ttl", None, "600"),
            timeout=cast(
                float, self.seconds(fields.get("timeout"), f"{key}.timeout", 10.0, "10", positive=True)
            ),
            retries=self.integer(fields.get("retries"), f"{key}.retries", 0, 10, 2, "2"),
            username=username,
            password=password,
            api_url=api_url,
            repository=repository,
        )
        return index, owns or []

    def pulp_api(self, fields: dict[str, yaml.Node], key: str, kind: str) -> tuple[str | None, str | None]:
        """``api_url`` and ``repository``: both or neither, and only on a ``kind: pulp`` index."""
        api_url = self.string(fields.get("api_url"), f"{key}.api_url", "https://pulp.example/pulp/api/v3/")
        repository = self.string(fields.get("repository"), f"{key}.repository", "internal", numbers=True)
        given = [name for name, value in (("api_url", api_url), ("repository", repository)) if value]
        if given and kind != "pulp":
            for name in given:
                self.report(
                    fields[name],
                    f"{key}.{name}",
                    f"{name} is read only for a Pulp index; add kind: pulp to this index or remove {name}",
                )
            return None, None
        if len(given) == 1:
            present, missing = given[0], "repository" if given[0] == "api_url" else "api_url"
            example = "internal" if missing == "repository" else "https://pulp.example/pulp/api/v3/"
            self.report(
                fields[present],
                f"{key}.{present}",
                f"{present} needs {missing} too (e.g. {missing}: {example}); Pulp is watched through both",
            )
            return None, None
        if api_url is not None:
            problem = _http_url_error(api_url)
            if problem:
                self.report(
                    fields["api_url"],
                    f"{key}.api_url",
                    f"{problem}; write Pulp's REST API root, e.g. https://pulp.example/pulp/api/v3/",
                )
                return None, None
            parts = urlsplit(api_url)
            if not parts.path.endswith("/"):
                api_url = urlunsplit(parts._replace(path=parts.path + "/"))
        return api_url, repository

    def index_url(self, text: str, kind: str) -> str:
        if kind == "folder":
            if "://" in text:
                parts = urlsplit(text)
                if parts.scheme != "file":
                    raise ValueError(f"kind folder needs a directory path, got the URL {_q(text)}")
                text = url2pathname(parts.path)
            path = _resolve_path(text, self.base_dir)
            if not path.exists():
                raise ValueError(f"folder {_q(str(path))} does not exist; create it or fix the path")
            if not path.is_dir():
                raise ValueError(f"{_q(str(path))} is not a directory; kind folder needs a folder of files")
            return str(path)
        if text == "pip":
            if kind != "simple":
                raise ValueError(
                    '"pip" stands for the index pip is configured with, which is a plain simple index;'
                    " write kind: simple, or give the Pulp distribution's URL"
                )
            return text
        problem = _http_url_error(text)
        if problem:
            raise ValueError(
                f"{problem}; write e.g. https://pulp.example/pypi/internal/simple/, or pip for pip's index"
            )
        parts = urlsplit(text)
        # Relative file links on a simple page resolve against this URL; without the final "/" they
        # would resolve against the parent folder.
        return text if parts.path.endswith("/") else urlunsplit(parts._replace(path=parts.path + "/"))

    def password(self, fields: dict[str, yaml.Node], key: str) -> str | None:
        password = self.string(fields.get("password"), f"{key}.password", '"s3cret"', numbers=True)
        variable = self.string(fields.get("password_env"), f"{key}.password_env", "PULP_PASSWORD")
        if variable is None:
            return password
        if password is not None:
            self.report(
                fields["password_env"],
                f"{key}.password_env",
                "give either password or password_env, not both",
            )
            return password
        value = self.environ.get(variable)
        if not value:
            self.report(
                fields["password_env"],
                f"{key}.password_env",
                f"environment variable {_q(variable)} is not set; export it before starting,"
                " or remove password_env",
            )
        return value or None

    def owner_conflicts(self, owned: list[_Owned]) -> None:
        for position, later in enumerate(owned):
            reported: set[int] = set()
            for earlier in owned[:position]:
                if earlier.position in (later.position, *reported):
                    continue
                message = _ownership_overlap(earlier, later)
                if message:
                    reported.add(earlier.position)
                    self.report(later.glob.node, later.glob.key, message)

    def monitor(self, node: yaml.Node | None, index_names: set[str]) -> list[MonitorRule]:
        if _is_null(node):
            return []
        assert node is not None
        if not isinstance(node, yaml.SequenceNode):
            self.report(
                node,
                "monitor",
                f"expected a list of rules, got {_describe(node)}; e.g. monitor: [{{index: internal}}]",
            )
            return []
        rules = []
        for position, item in enumerate(node.value):
            key = f"monitor[{position}]"
            fields = self.mapping(item, key, _MONITOR_KEYS, required=("index",))
            index = self.string(fields.get("index"), f"{key}.index", "internal", required=True)
            if index is not None and index not in index_names:
                known = ", ".join(sorted(index_names)) or "none"
                self.report(
                    fields["index"],
                    f"{key}.index",
                    f"no index is named {_q(index)}{_did_you_mean(index, index_names)} (indexes: {known})",
                )
            projects_node = fields.get("projects")
            projects = self.globs(projects_node, f"{key}.projects", '["*"]')
            if isinstance(projects_node, yaml.SequenceNode) and not projects_node.value:
                self.report(
                    projects_node, f"{key}.projects", 'an empty list monitors nothing; leave it out for ["*"]'
                )
            versions = self.string(fields.get("versions"), f"{key}.versions", '">=2"', numbers=True)
            if versions is not None:
                versions = versions.strip()
                try:
                    SpecifierSet(versions)
                except InvalidSpecifier:
                    self.report(
                        fields["versions"],
                        f"{key}.versions",
                        f'{_q(versions)} is not a PEP 440 version specifier; e.g. ">=2" or ">=2,<3"',
                    )
            patterns = tuple(glob.pattern for glob in projects) if projects else ("*",)
            rules.append(MonitorRule(index or "", patterns, versions))
        return rules


# --- globs ------------------------------------------------------------------------------------------

_NAME_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-"
_NOT_GLOB_CHAR = re.compile(r"[^A-Za-z0-9._\-*?\[\]!]")
_GLOB_SYNTAX = "use letters, digits, '-', '_', '.' and the glob syntax * ? [abc] [!abc]"


def _glob_problem(text: str) -> str | None:
    bad = _NOT_GLOB_CHAR.search(text)
    if bad:
        return f"{_q(text)}: {_q(bad.group())} cannot occur in a project name; {_GLOB_SYNTAX}"
    pattern = _normalize_glob(text)
    position = 0
    while position < len(pattern):
        char = pattern[position]
        if char == "]":
            return f'{_q(text)} has a "]" without a "[" before it; {_GLOB_SYNTAX}'
        if char == "!":
            return f'{_q(text)}: "!" only negates at the start of a [...] class, as in "[!0-9]"'
        if char == "[":
            end = pattern.find("]", position + 1)
            if end == -1:
                return f'{_q(text)} has a "[" that is never closed; {_GLOB_SYNTAX}'
            body = pattern[position + 1 : end].removeprefix("!")
            if not body or any(c in "[!*?" for c in body):
                return (
                    f'{_q(text)}: a [...] class must list name characters, e.g. "[abc]", "[a-f]" or "[!0-9]"'
                )
            position = end
        position += 1
    return None


def _glob_tokens(pattern: str) -> list[str | None]:
    """Per position, the name characters it accepts; ``None`` for ``*``.  *pattern* must be valid."""
    tokens: list[str | None] = []
    position = 0
    while position < len(pattern):
        char = pattern[position]
        if char == "*":
            tokens.append(None)
        elif char == "?":
            tokens.append(_NAME_CHARS)
        elif char == "[":
            end = pattern.index("]", position + 1)
            tokens.append(
                "".join(c for c in _NAME_CHARS if fnmatch.fnmatchcase(c, pattern[position : end + 1]))
            )
            position = end
        else:
            tokens.append(char)
        position += 1
    return tokens


def _glob_overlap(first: str, second: str) -> str | None:
    """A name both normalized globs match, or ``None`` when no name can match both."""
    a, b = _glob_tokens(first), _glob_tokens(second)

    # Walks both patterns at once; memoized on positions, so quadratic in pattern length at worst.
    @functools.cache
    def walk(i: int, j: int) -> str | None:
        if i == len(a) and j == len(b):
            return ""
        a_token, b_token = (a[i] if i < len(a) else ""), (b[j] if j < len(b) else "")
        if a_token is None:
            rest = walk(i + 1, j)
            if rest is not None:
                return rest
            if b_token:
                rest = walk(i, j + 1)
                if rest is not None:
                    return b_token[0] + rest
        if b_token is None:
            rest = walk(i, j + 1)
            if rest is not None:
                return rest
            if a_token:
                rest = walk(i + 1, j)
                if rest is not None:
                    return a_token[0] + rest
        if a_token and b_token:
            common = [c for c in a_token if c in b_token]
            rest = walk(i + 1, j + 1) if common else None
            if rest is not None:
                return common[0] + rest
        return None

    return walk(0, 0)


def _ownership_overlap(earlier: _Owned, later: _Owned) -> str | None:
    first, second = earlier.glob, later.glob
    owner = f"index {_q(earlier.index)} ({first.key}, line {_line(first.node)})"
    fix = "a name may be owned by one index only — remove one of them"
    if first.pattern == second.pattern:
        return f"{_q(second.text)} is already owned by {owner}; {fix}"
    witness = _glob_overlap(first.pattern, second.pattern)
    if witness is None:
        return None
    if witness == second.pattern:  # the later entry is a plain name the earlier glob covers
        return f"{_q(second.text)} is already owned by {owner} through {_q(first.text)}; {fix}"
    return (
        f"{_q(second.text)} overlaps {_q(first.text)}, owned by {owner}: both match e.g. {_q(witness)}; {fix}"
    )
