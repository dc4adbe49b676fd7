"""Resolution benchmark: index-proxy's ``POST /api/v1/resolve`` against ``uv pip compile`` and pip.

Run from the repository root::

    .venv/bin/python benchmarks/resolve.py [--quick] [--rounds N] [--profile] [--markdown FRAGMENT.md]

One run does all of this, on 127.0.0.1 only (pip's corpus download aside):

1. Corpus: ``pip download --only-binary :all:`` of a realistic stack with its dependencies, for this
   Python (this machine's pip configuration, so the index pip is configured with), into
   ``benchmarks/.cache/resolve-wheels`` (reused when present). That folder is index-proxy's one index
   (``kind: folder``).
2. Rounds (3, or 1 with ``--quick``), each with a fresh index-proxy per client (new process, database
   and blob folder; core 0), the clients on core 1:

   - ours: the resolve endpoint, cold (the first call: every core metadata is extracted from the
     wheels) then warm (calls 2 to 6 on the same proxy);
   - uv: ``uv pip compile --no-header --python-version X.Y.Z`` against ``<proxy>/simple/``, cold (fresh
     ``UV_CACHE_DIR`` and fresh proxy), then warm (same cache, 5 runs), then once more with a fresh
     cache against the now warm proxy;
   - pip: ``pip install --dry-run --ignore-installed --report`` against ``<proxy>/simple/``, fresh
     cache and fresh proxy, fresh cache and warm proxy, then warm cache.

   Clients run without this machine's pip/uv configuration: the environment less ``PIP_*``/``UV_*``,
   ``PIP_CONFIG_FILE=/dev/null``, an empty ``XDG_CONFIG_DIRS``, ``uv --no-config``, a scratch
   working directory.
3. Answers: our pins against uv's (and pip's), differences printed.
4. Where our time goes: the same resolution in this process (index-proxy's services opened on a fresh
   state, the driver's steps and the services' calls timed by wrappers put in at run time, SQL
   statements and new SQLite connections counted by SQLAlchemy events), cold and warm: page loads,
   metadata fetches, the resolver, the rest (request, lock file, justification).
5. With ``--profile``, or when a goal is missed, the warm path profiled twice: py-spy (installed into
   ``benchmarks/.venv-peers`` if missing) sampling a fresh index-proxy through ``--profile-calls`` warm
   calls, and cProfile of as many warm calls in this process; each summarized by area (SQLite access,
   METADATA parsing, packaging, resolver, ...) and by function. The app's code is never changed.

It prints a table, the ratios against the goals (ours warm / uv warm <= 1.0, ours cold / uv cold
<= 1.5) and pip's for reference. ``--markdown`` writes the results as a fragment for
``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import cProfile
import dataclasses
import io
import json
import os
import platform
import pstats
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _processes import (
    Server,
    cpu_model_and_memory,
    first_line,
    free_port,
    log,
    other_busy_processes,
    scratch_dir,
    version_of,
    yes,
)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CACHE = HERE / ".cache"
CORPUS = CACHE / "resolve-wheels"
PROJECT_BIN = Path(sys.executable).parent
PEERS = HERE / ".venv-peers"

PACKAGES = (
    "numpy",
    "pandas",
    "scipy",
    "scikit-learn",
    "matplotlib",
    "requests",
    "flask",
    "sqlalchemy",
    "pydantic",
    "fastapi",
    "boto3",
    "pytest",
)

SERVER_CPU = 0
CLIENT_CPU = 1
WARM_CALLS = 5

GOAL_WARM = 1.0  # ours warm / uv warm
GOAL_COLD = 1.5  # ours cold / uv cold

PIN = True


# -- small helpers ---------------------------------------------------------------------------------


def pinned(cpu: int, command: Sequence[str]) -> list[str]:
    command = list(command)
    return ["taskset", "-c", str(cpu), *command] if PIN and shutil.which("taskset") else command


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def normal_version(version: str) -> str:
    from packaging.version import InvalidVersion, Version

    try:
        return str(Version(version))
    except InvalidVersion:
        return version


def post_json(url: str, body: bytes, timeout: float = 300.0) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read()


# -- processes -------------------------------------------------------------------------------------


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# -- corpus ----------------------------------------------------------------------------------------


def build_corpus(refresh: bool) -> Path:
    """Wheels of the stack and its dependencies for this Python, from the index pip is configured with."""
    stamp = CORPUS / ".complete"
    key = json.dumps({"packages": PACKAGES, "python": platform.python_version()})
    if not refresh and stamp.exists() and stamp.read_text() == key:
        return CORPUS
    if CORPUS.exists():
        shutil.rmtree(CORPUS)
    CORPUS.mkdir(parents=True)
    log(f"downloading the corpus ({len(PACKAGES)} requirements and their dependencies)")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--only-binary",
            ":all:",
            "--dest",
            str(CORPUS),
            *PACKAGES,
        ],
        check=True,
    )
    stamp.write_text(key)
    return CORPUS


def machine_environment() -> dict[str, Any]:
    """What ``index-proxy env`` prints for this machine: markers, tags, cpu, cuda, glibc."""
    done = subprocess.run(
        [str(PROJECT_BIN / "index-proxy"), "env"], capture_output=True, text=True, check=True, timeout=60
    )
    return dict(json.loads(done.stdout))


# -- index-proxy -----------------------------------------------------------------------------------


def write_config(state: Path, wheels: Path, port: int) -> Path:
    config = state / "config.yaml"
    config.write_text(
        json.dumps(
            {
                "server": {"host": "127.0.0.1", "port": port, "analysis_workers": 0},
                "storage": {"database": f"sqlite:///{state}/state.db", "blobs": str(state / "blobs")},
                "indexes": [{"name": "local", "kind": "folder", "url": str(wheels)}],
            }
        )
    )
    return config


def start_proxy(wheels: Path, run: Path, label: str) -> tuple[Server, int]:
    """A fresh index-proxy (new database and blob folder) on the folder index, pinned to core 0."""
    port = free_port()
    state = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=run))
    config = write_config(state, wheels, port)
    command = [str(PROJECT_BIN / "index-proxy"), "serve", "--config", str(config), "--log-level", "warning"]
    server = Server("index-proxy", pinned(SERVER_CPU, command), state / "server.log")
    server.wait_ready(f"http://127.0.0.1:{port}/healthz")
    return server, port


def resolve_payload(environment: dict[str, Any]) -> dict[str, Any]:
    return {"requirements": list(PACKAGES), "environment": environment, "formats": ["requirements.txt"]}


@dataclasses.dataclass
class Call:
    seconds: float
    pins: dict[str, str]
    stats: dict[str, Any] = dataclasses.field(default_factory=dict)
    server_cpu: float = 0.0
    """CPU seconds index-proxy used during the call (or the client run)."""
    note: str = ""
    sizes: tuple[int, int] = (0, 0)
    """Request and response bytes (ours only)."""


def call_ours(port: int, payload: dict[str, Any], server: Server) -> Call:
    request = json.dumps(payload).encode()
    cpu = server.cpu_seconds()
    started = time.perf_counter()
    status, raw = post_json(f"http://127.0.0.1:{port}/api/v1/resolve", request)
    elapsed = time.perf_counter() - started
    if status != 200:
        raise RuntimeError(f"resolve answered HTTP {status}: {raw[:2000].decode(errors='replace')}")
    body = json.loads(raw)
    pins = {canonical(pin["name"]): normal_version(pin["version"]) for pin in body["pins"]}
    return Call(elapsed, pins, body["stats"], server.cpu_seconds() - cpu, sizes=(len(request), len(raw)))


# -- clients ---------------------------------------------------------------------------------------


def client_env(scratch: Path, cache_dir: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PIP_", "UV_"))}
    # No pip configuration at all (PIP_CONFIG_FILE=/dev/null loads none, the global ones are also
    # looked up under XDG_CONFIG_DIRS, pointed at an empty folder); uv runs with --no-config.
    xdg = scratch / "xdg-empty"
    xdg.mkdir(exist_ok=True)
    env.update(PIP_CONFIG_FILE=os.devnull, XDG_CONFIG_DIRS=str(xdg), UV_CACHE_DIR=str(cache_dir))
    return env


def fresh_cache(scratch: Path, client: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"{client}-cache-", dir=scratch))


def run_uv(url: str, reqs: Path, cache_dir: Path, scratch: Path, server: Server) -> Call:
    command = [
        str(PROJECT_BIN / "uv"),
        "pip",
        "compile",
        "--no-config",
        "--no-header",
        "--python",
        sys.executable,
        "--python-version",
        platform.python_version(),
        "--index-url",
        url,
        str(reqs),
    ]
    done, elapsed, cpu = _run_client("uv", command, cache_dir, scratch, server)
    pins = {}
    for line in done.stdout.splitlines():
        if "==" in line and not line.lstrip().startswith("#"):
            name, _, version = line.partition("==")
            pins[canonical(name.split("[")[0].strip())] = normal_version(version.split()[0].strip())
    reported = re.search(r"Resolved \d+ packages in [\d.]+\s*m?s", done.stderr)
    return Call(elapsed, pins, server_cpu=cpu, note=reported.group() if reported else "")


def run_pip(url: str, reqs: Path, cache_dir: Path, scratch: Path, server: Server) -> Call:
    report = Path(tempfile.mkstemp(prefix="pip-report-", suffix=".json", dir=scratch)[1])
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--dry-run",
        "--ignore-installed",
        "--quiet",
        "--disable-pip-version-check",
        "--no-input",
        "--report",
        str(report),
        "--cache-dir",
        str(cache_dir),
        "--index-url",
        url,
        "-r",
        str(reqs),
    ]
    _done, elapsed, cpu = _run_client("pip", command, cache_dir, scratch, server)
    pins = {
        canonical(item["metadata"]["name"]): normal_version(item["metadata"]["version"])
        for item in json.loads(report.read_text())["install"]
    }
    report.unlink()
    return Call(elapsed, pins, server_cpu=cpu)


def _run_client(
    client: str, command: list[str], cache_dir: Path, scratch: Path, server: Server
) -> tuple[subprocess.CompletedProcess[str], float, float]:
    cpu = server.cpu_seconds()
    started = time.perf_counter()
    done = subprocess.run(
        pinned(CLIENT_CPU, command),
        capture_output=True,
        text=True,
        env=client_env(scratch, cache_dir),
        cwd=scratch,
        timeout=600,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{client} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done, elapsed, server.cpu_seconds() - cpu


# -- the rounds ------------------------------------------------------------------------------------


CASES = (
    # (key, client, label)
    ("ours-cold", "index-proxy", "resolve API, cold (fresh proxy: metadata extracted from wheels)"),
    ("ours-warm", "index-proxy", f"resolve API, warm (same proxy, calls 2-{WARM_CALLS + 1})"),
    ("uv-cold", "uv", "pip compile, cold (fresh cache, fresh proxy)"),
    ("uv-warm", "uv", f"pip compile, warm (same cache, {WARM_CALLS} runs)"),
    ("uv-fresh-cache", "uv", "pip compile, fresh cache, warm proxy"),
    ("pip-cold", "pip", "install --dry-run, fresh cache, fresh proxy"),
    ("pip-fresh-cache", "pip", "install --dry-run, fresh cache, warm proxy"),
    ("pip-warm", "pip", "install --dry-run, warm cache (same cache, 2nd run)"),
)


def bench(
    wheels: Path, payload: dict[str, Any], rounds: int, with_pip: bool, run: Path
) -> dict[str, list[Call]]:
    reqs = run / "requirements.in"
    reqs.write_text("\n".join(PACKAGES) + "\n")
    results: dict[str, list[Call]] = collections.defaultdict(list)

    def record(key: str, call: Call) -> None:
        results[key].append(call)
        extra = f", resolver {call.stats['resolver_seconds']:.3f} s" if call.stats else ""
        extra += f", {call.note}" if call.note else ""
        log(
            f"{key:16} {call.seconds:7.3f} s  ({len(call.pins)} pins,"
            f" proxy cpu {call.server_cpu:.2f} s{extra})"
        )

    # One untimed uv run first, so the first timed one does not pay for a cold OS file cache.
    server, port = start_proxy(wheels, run, "warmup")
    try:
        run_uv(f"http://127.0.0.1:{port}/simple/", reqs, fresh_cache(run, "uv"), run, server)
    finally:
        server.stop()
    for number in range(rounds):
        log(f"round {number + 1} of {rounds}")
        server, port = start_proxy(wheels, run, "ours")
        try:
            record("ours-cold", call_ours(port, payload, server))
            for _ in range(WARM_CALLS):
                record("ours-warm", call_ours(port, payload, server))
        finally:
            server.stop()
        server, port = start_proxy(wheels, run, "uv")
        try:
            url = f"http://127.0.0.1:{port}/simple/"
            cache = fresh_cache(run, "uv")
            record("uv-cold", run_uv(url, reqs, cache, run, server))
            for _ in range(WARM_CALLS):
                record("uv-warm", run_uv(url, reqs, cache, run, server))
            record("uv-fresh-cache", run_uv(url, reqs, fresh_cache(run, "uv"), run, server))
        finally:
            server.stop()
        if not with_pip:
            continue
        server, port = start_proxy(wheels, run, "pip")
        try:
            url = f"http://127.0.0.1:{port}/simple/"
            record("pip-cold", run_pip(url, reqs, fresh_cache(run, "pip"), run, server))
            cache = fresh_cache(run, "pip")
            record("pip-fresh-cache", run_pip(url, reqs, cache, run, server))
            record("pip-warm", run_pip(url, reqs, cache, run, server))
        finally:
            server.stop()
    return dict(results)


# -- where our time goes: the same resolution in this process --------------------------------------


@dataclasses.dataclass
class Breakdown:
    total: float
    resolver: float
    walls: dict[str, float]
    """Per kind of call (see _PROBES), the wall time during which at least one such call ran."""
    counts: dict[str, int]
    """Per kind of call, how many ran."""
    bursts: dict[str, int]
    """Per kind of call, how many separate bursts (the driver's gathers) they came in."""
    sql: int
    """SQL statements sent to SQLite."""
    connects: int
    """New SQLite connections the pool opened (each an aiosqlite thread, plus the PRAGMAs)."""
    stats: dict[str, Any]

    @property
    def rest(self) -> float:
        return max(0.0, self.total - self.walls["candidates"] - self.walls["requires_dist"] - self.resolver)


class _Intervals:
    """(start, end) of calls of one kind; their union is the wall time spent in that kind of call."""

    def __init__(self) -> None:
        self.spans: list[tuple[float, float]] = []

    def wrap(self, function: Callable[..., Any]) -> Callable[..., Any]:
        if asyncio.iscoroutinefunction(function):

            async def timed(*args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                try:
                    return await function(*args, **kwargs)
                finally:
                    self.spans.append((started, time.perf_counter()))

            return timed

        def timed_sync(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.spans.append((started, time.perf_counter()))  # list.append is thread-safe

        return timed_sync

    def wall(self) -> float:
        total, end = 0.0, float("-inf")
        for start, stop in sorted(self.spans):
            if stop <= end:
                continue
            total += stop - max(start, end)
            end = stop
        return total

    def bursts(self) -> int:
        count, end = 0, float("-inf")
        for start, stop in sorted(self.spans):
            if start > end:
                count += 1
            end = max(end, stop)
        return count


# What the in-process run times: (kind, where the callable lives, attribute). "driver" is the resolve
# driver's class, "module:..." a module-level function, the rest attributes of the Services object.
_PROBES = (
    ("candidates", "driver", "candidates"),
    ("requires_dist", "driver", "requires_dist"),
    ("load_project", "pages", "load_project"),
    ("facts_for", "analysis", "facts_for"),
    ("get_file", "database", "get_file"),
    ("core_metadata", "files", "core_metadata"),
    ("blob_read", "blobs", "read"),
    ("parse_email", "module:index_proxy.files", "parse_email"),
    ("folder_sha256", "module:index_proxy.upstreams.folder", "_sha256_of"),
)


def in_process(
    wheels: Path, payload: dict[str, Any], run: Path, warm_calls: int, profile_calls: int
) -> tuple[Breakdown, list[Breakdown], pstats.Stats | None]:
    """index-proxy's services in this process, on a fresh state: one cold call, warm calls, a profile.

    The steps are timed by wrapping the driver's methods, the services' methods and two module
    functions at run time (instrumentation of this process only; the app's code is unchanged), and
    SQL statements are counted with SQLAlchemy's ``before_cursor_execute`` event. The profile runs
    with every wrapper removed again.
    """
    import importlib

    from sqlalchemy import event

    from index_proxy import resolving
    from index_proxy.api_resolve import resolve_request
    from index_proxy.config import load_config
    from index_proxy.services import open_services

    state = Path(tempfile.mkdtemp(prefix="in-process-", dir=run))
    config = load_config(write_config(state, wheels, free_port()))
    kinds = {kind: _Intervals() for kind, _, _ in _PROBES}
    sql = [0, 0]  # statements, new connections

    def count_sql(*_args: Any) -> None:
        sql[0] += 1

    def count_connect(*_args: Any) -> None:
        sql[1] += 1

    async def one(services: Any) -> Breakdown:
        for spans in kinds.values():
            spans.spans.clear()
        sql[0] = sql[1] = 0
        started = time.perf_counter()
        status, body = await resolve_request(services, payload, "http://127.0.0.1")
        total = time.perf_counter() - started
        if status != 200:
            raise RuntimeError(f"in-process resolve answered {status}: {str(body)[:2000]}")
        return Breakdown(
            total=total,
            resolver=body["stats"]["resolver_seconds"],
            walls={kind: spans.wall() for kind, spans in kinds.items()},
            counts={kind: len(spans.spans) for kind, spans in kinds.items()},
            bursts={kind: spans.bursts() for kind, spans in kinds.items()},
            sql=sql[0],
            connects=sql[1],
            stats=body["stats"],
        )

    async def main() -> tuple[Breakdown, list[Breakdown], pstats.Stats | None]:
        async with open_services(config) as services:
            undo: list[Callable[[], None]] = []
            for kind, where, name in _PROBES:
                if where == "driver":
                    owner: Any = resolving._Driver
                elif where.startswith("module:"):
                    owner = importlib.import_module(where.removeprefix("module:"))
                else:
                    owner = getattr(services, where)
                original = getattr(owner, name)
                setattr(owner, name, kinds[kind].wrap(original))
                if isinstance(owner, type) or where.startswith("module:"):
                    undo.append(
                        lambda owner=owner, name=name, original=original: setattr(owner, name, original)
                    )
                else:
                    undo.append(lambda owner=owner, name=name: delattr(owner, name))
            engine = services.database.engine.sync_engine
            event.listen(engine, "before_cursor_execute", count_sql)
            event.listen(engine, "connect", count_connect)
            try:
                cold = await one(services)
                warm = [await one(services) for _ in range(warm_calls)]
            finally:
                event.remove(engine, "before_cursor_execute", count_sql)
                event.remove(engine, "connect", count_connect)
                for restore in undo:
                    restore()
            profile = None
            if profile_calls:
                profiler = cProfile.Profile()
                profiler.enable()
                for _ in range(profile_calls):
                    await resolve_request(services, payload, "http://127.0.0.1")
                profiler.disable()
                profile = pstats.Stats(profiler, stream=io.StringIO())
            return cold, warm, profile

    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(main())


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when it is installed, as uvicorn picks it for the server."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop  # type: ignore[no-any-return]


def _frame(key: tuple[str, int, str]) -> str:
    path, line, function = key
    if path == "~":
        return function  # a builtin: "<method 'execute' of 'sqlite3.Cursor' objects>"
    tail = "/".join(Path(path).parts[-2:])
    return f"{function} ({tail}:{line})"


_AREAS = (
    # (substring of the file path, area); the first match wins. Builtins count for their caller's area.
    ("/sqlalchemy/", "SQLite access: SQLAlchemy async sessions over aiosqlite, thread hand-offs"),
    ("/aiosqlite/", "SQLite access: SQLAlchemy async sessions over aiosqlite, thread hand-offs"),
    ("/greenlet/", "SQLite access: SQLAlchemy async sessions over aiosqlite, thread hand-offs"),
    ("/email/", "METADATA parsing (packaging.metadata.parse_email, email.feedparser)"),
    ("/packaging/metadata.py", "METADATA parsing (packaging.metadata.parse_email, email.feedparser)"),
    ("/packaging/", "packaging: requirements, specifiers, markers, versions"),
    ("/resolver/", "resolver (Python layer and compiled core)"),
    ("/index_proxy/store/", "index-proxy store layer (rows to records)"),
    ("/index_proxy/", "index-proxy (driver, fit, API, lock writers)"),
    ("/asyncio/", "event loop, tasks, threads (asyncio, threading, queue)"),
    ("/threading.py", "event loop, tasks, threads (asyncio, threading, queue)"),
    ("/queue.py", "event loop, tasks, threads (asyncio, threading, queue)"),
    ("/concurrent/", "event loop, tasks, threads (asyncio, threading, queue)"),
    ("/json/", "JSON"),
    ("/pathlib.py", "file system (pathlib)"),
)


def _area_of(key: tuple[str, int, str]) -> str:
    for needle, area in _AREAS:
        if needle in key[0]:
            return area
    return "other"


def _coroutine_functions() -> set[tuple[str, int, str]]:
    """(file, first line, name) of the async functions of index_proxy and resolver, as loaded."""
    import inspect

    found = set()
    for name, module in list(sys.modules.items()):
        if not name.startswith(("index_proxy", "resolver")):
            continue
        for value in vars(module).values():
            members = [value, *vars(value).values()] if inspect.isclass(value) else [value]
            for member in members:
                code = getattr(member, "__code__", None)
                if code is not None and inspect.iscoroutinefunction(member):
                    found.add((code.co_filename, code.co_firstlineno, code.co_name))
    return found


def summarize_profile(stats: pstats.Stats, calls: int, top: int = 15) -> list[str]:
    """Own time by area and by function, and the cumulative time of our plain functions, per call."""
    entries = stats.stats  # type: ignore[attr-defined]
    total = sum(value[2] for value in entries.values())  # every function's own time: all profiled time
    per_call = total / calls
    lines = [
        f"cProfile, {calls} warm calls in-process: {per_call * 1000:.1f} ms per call under the profiler "
        "(its overhead included)",
        "own time by area (ms per call, share):",
    ]
    areas: collections.Counter[str] = collections.Counter()
    for key, (_cc, _nc, tt, _ct, callers) in entries.items():
        if key[0] == "~" and callers:
            for caller, value in callers.items():
                areas[_area_of(caller)] += value[2]
        else:
            areas[_area_of(key)] += tt
    lines += [
        f"  {value / calls * 1000:7.2f}  {value / total:6.1%}  {area}" for area, value in areas.most_common()
    ]
    lines.append("own time, top functions (ms per call, share, calls per resolve):")
    by_own = sorted(entries.items(), key=lambda item: item[1][2], reverse=True)[:top]
    for key, (_cc, nc, tt, _ct, _callers) in by_own:
        lines.append(f"  {tt / calls * 1000:7.2f}  {tt / total:6.1%}  {nc / calls:7.0f}  {_frame(key)}")
    # Cumulative time is only meaningful for plain functions: a coroutine's is summed over every
    # resumption, overlapping with the others that ran concurrently.
    coroutines = _coroutine_functions()
    ours = [
        (key, value)
        for key, value in entries.items()
        if ("/index_proxy/" in key[0] or "/resolver/" in key[0]) and key not in coroutines
    ]
    lines.append("cumulative time, index-proxy and resolver plain functions (ms per call, share, calls):")
    for key, (_cc, nc, _tt, ct, _callers) in sorted(ours, key=lambda item: item[1][3], reverse=True)[:top]:
        lines.append(f"  {ct / calls * 1000:7.2f}  {ct / total:6.1%}  {nc / calls:7.0f}  {_frame(key)}")
    return lines


# -- py-spy of the live server under warm calls ----------------------------------------------------


def ensure_py_spy() -> Path | None:
    """py-spy in benchmarks/.venv-peers (created or extended on first use); None if it cannot be had."""
    py_spy = PEERS / "bin" / "py-spy"
    if py_spy.exists():
        return py_spy
    python = PEERS / "bin" / "python"
    try:
        if not python.exists():
            log("creating benchmarks/.venv-peers for py-spy")
            base = getattr(sys, "_base_executable", sys.executable)
            subprocess.run([base, "-m", "venv", str(PEERS)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "py-spy"], check=True)
    except (OSError, subprocess.CalledProcessError) as error:
        log(f"no py-spy ({error}); the in-process cProfile stands alone")
        return None
    return py_spy if py_spy.exists() else None


def py_spy_profile(wheels: Path, payload: dict[str, Any], run: Path, calls: int) -> list[str]:
    """py-spy samples a fresh index-proxy while this script makes warm resolve calls, one after another."""
    py_spy = ensure_py_spy()
    if py_spy is None:
        return []
    server, port = start_proxy(wheels, run, "py-spy")
    raw = run / "resolve.collapsed"
    try:
        for _ in range(3):  # cold, then two warm calls before sampling starts
            call_ours(port, payload, server)
        recorder = subprocess.Popen(
            pinned(
                CLIENT_CPU,
                [
                    str(py_spy),
                    "record",
                    "--pid",
                    str(server.process.pid),
                    "--rate",
                    str(_PY_SPY_RATE),
                    "--format",
                    "raw",
                    "--nonblocking",
                    "--output",
                    str(raw),
                ],
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1.0)  # attached
        started = time.perf_counter()
        walls = [call_ours(port, payload, server).seconds for _ in range(calls)]
        sampled = time.perf_counter() - started
        recorder.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
        recorder.wait(timeout=60)
    finally:
        server.stop()
    if not raw.exists():
        return ["(py-spy wrote nothing: is it allowed to attach here?)"]
    lines = [
        f"py-spy ({_PY_SPY_RATE} Hz, non-blocking) on index-proxy over {calls} warm resolve calls, one after "
        f"another ({sampled:.2f} s, median call {statistics.median(walls) * 1000:.0f} ms); samples of "
        "busy threads, by the innermost frame with a known area, then by function:"
    ]
    return lines + summarize_py_spy(raw, calls)


_PY_SPY_RATE = 500

# Threads that wait for work (aiosqlite's worker threads, asyncio's to_thread workers) are sampled as
# if busy, since they wait in C; their samples are left out.
_IDLE_LEAVES = ("_connection_worker_thread ", "Condition.wait ", "Thread._wait_for_tstate_lock ", "_worker ")

_SERVER_AREAS = (
    # py-spy sees no further than uvloop's C loop: polling, dispatching callbacks, thread wake-ups.
    ("/asyncio/runners.py", "uvloop's loop (C: polling, callbacks, wake-ups from threads)"),
    ("/uvicorn/", "HTTP server (uvicorn, starlette)"),
    ("/starlette/", "HTTP server (uvicorn, starlette)"),
    ("/httptools/", "HTTP server (uvicorn, starlette)"),
    ("/h11/", "HTTP server (uvicorn, starlette)"),
)


def _py_spy_frame(frame: str) -> tuple[str, str]:
    """(path, "function (last/parts.py)") of a py-spy frame "function (path/to/module.py:line)"."""
    match = re.match(r"(.*) \((.*?):\d+\)$", frame.strip())
    if not match:
        return "", frame.strip()
    function, path = match.groups()
    return path, f"{function} ({'/'.join(Path(path).parts[-2:])})"


def summarize_py_spy(raw: Path, calls: int, top: int = 15) -> list[str]:
    area: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = [_py_spy_frame(frame) for frame in stack.split(";") if frame.strip()]
        if not frames or frames[-1][1].startswith(_IDLE_LEAVES):
            continue
        count = int(count_text)
        total += count
        own[frames[-1][1]] += count
        for _path, name in set(frames):
            inclusive[name] += count
        for path, _name in reversed(frames):
            found = next(
                (label for needle, label in (*_SERVER_AREAS, *_AREAS) if needle in f"/{path}"),
                None,
            )
            if found is not None:
                area[found] += count
                break
        else:
            area["other"] += count
    if not total:
        return ["(no samples)"]

    def ms(count: int) -> str:
        return f"{count / _PY_SPY_RATE / calls * 1000:7.2f}"

    lines = [
        f"{total} samples ({ms(total).strip()} ms of busy threads per call); by area (ms per call, share):"
    ]
    lines += [f"  {ms(count)}  {count / total:6.1%}  {name}" for name, count in area.most_common()]
    lines.append("own time, top frames:")
    lines += [f"  {ms(count)}  {count / total:6.1%}  {name}" for name, count in own.most_common(top)]
    lines.append("inclusive, index-proxy and resolver frames:")
    ours = [
        (name, count)
        for name, count in inclusive.most_common()
        if any(part in name for part in ("(index_proxy/", "(resolver/", "(store/", "(upstreams/"))
    ]
    lines += [f"  {ms(count)}  {count / total:6.1%}  {name}" for name, count in ours[:top]]
    return lines


# -- report ----------------------------------------------------------------------------------------


def median(calls: Sequence[Call]) -> float:
    return statistics.median(call.seconds for call in calls) if calls else float("nan")


def compare(ours: dict[str, str], theirs: dict[str, str]) -> list[str]:
    lines = []
    for name in sorted(set(ours) | set(theirs)):
        mine, other = ours.get(name), theirs.get(name)
        if mine != other:
            lines.append(f"{name}: ours {mine or '(absent)'}, theirs {other or '(absent)'}")
    return lines


def machine_notes(load_before: str, load_after: str, busy_before: str, busy_after: str) -> list[str]:
    model, memory = cpu_model_and_memory()
    pins = (
        f"index-proxy pinned to core {SERVER_CPU}, clients (uv, pip, this script's HTTP client) to "
        f"core {CLIENT_CPU} (taskset)"
        if PIN
        else "no CPU pinning"
    )
    return [
        f"CPU: {os.cpu_count()} x {model}, {memory}; Linux {platform.release()}; "
        f"Python {platform.python_version()}; shared with other processes",
        pins,
        f"versions: uv {version_of([str(PROJECT_BIN / 'uv'), '--version'])}, "
        f"pip {version_of([sys.executable, '-m', 'pip', '--version'])}; {_revision()}",
        f"load average (1/5/15 min) before: {load_before}; after: {load_after}",
        f"other busy processes (share of a core, 1 s samples) at start: {busy_before}; at end: {busy_after}",
    ]


def _revision() -> str:
    head = first_line(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    changed = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--", "index_proxy", "resolver"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return f"index-proxy commit {head}" + (" plus uncommitted changes" if changed else "")


def _runs(calls: Sequence[Call]) -> str:
    values = sorted(call.seconds for call in calls)
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{values[0]:.3f} to {values[-1]:.3f} ({len(values)} runs)"


def render(
    command: str,
    wheels: Path,
    results: dict[str, list[Call]],
    notes: list[str],
    cold: Breakdown | None,
    warm: list[Breakdown],
    profile: list[str],
) -> tuple[str, str, bool]:
    """(plain text, markdown fragment, whether every goal was met)."""
    ours_pins = results["ours-cold"][0].pins
    projects = len(ours_pins)
    md = [
        f"Command: `{command}`",
        "",
        f"Corpus: {len(PACKAGES)} requirements ({', '.join(PACKAGES)}) resolving to {projects} projects; "
        f"{len(list(wheels.glob('*.whl')))} wheels in the folder index (one version of each project, "
        "as `pip download` picked them).",
        "",
        *[f"- {note}" for note in notes],
        "",
        "| client | case | median s | runs s | proxy CPU s (median) | pins |",
        "| --- | --- | ---: | --- | ---: | ---: |",
    ]
    for key, client, label in CASES:
        calls = results.get(key)
        if not calls:
            continue
        cpu = statistics.median(call.server_cpu for call in calls)
        same = all(call.pins == ours_pins for call in calls)
        pins = f"{len(calls[0].pins)}" + ("" if same else " (differ from ours)")
        md.append(f"| {client} | {label} | {median(calls):.3f} | {_runs(calls)} | {cpu:.2f} | {pins} |")
    ratios = [
        ("ours warm / uv warm", "ours-warm", "uv-warm", GOAL_WARM),
        ("ours cold / uv cold (both on a fresh proxy)", "ours-cold", "uv-cold", GOAL_COLD),
        ("ours cold / uv fresh cache on a warm proxy", "ours-cold", "uv-fresh-cache", None),
        ("ours warm / uv fresh cache on a warm proxy (a new client)", "ours-warm", "uv-fresh-cache", None),
        ("ours warm / pip warm cache", "ours-warm", "pip-warm", None),
        ("ours cold / pip cold (both on a fresh proxy)", "ours-cold", "pip-cold", None),
    ]
    md += ["", "| ratio | value | goal | met |", "| --- | ---: | --- | --- |"]
    met_all = True
    for label, mine, theirs, goal in ratios:
        if not results.get(mine) or not results.get(theirs):
            continue
        ratio = median(results[mine]) / median(results[theirs])
        if goal is None:
            md.append(f"| {label} | {ratio:.2f} | (reference) | |")
            continue
        met = ratio <= goal
        met_all = met_all and met
        md.append(f"| {label} | {ratio:.2f} | ≤ {goal:g} | {yes(met)} |")
    stats_lines = []
    for key in ("ours-cold", "ours-warm"):
        calls = results.get(key, [])
        if not calls:
            continue
        seconds = statistics.median(call.stats["seconds"] for call in calls)
        resolver = statistics.median(call.stats["resolver_seconds"] for call in calls)
        wall = median(calls)
        last = calls[-1].stats
        stats_lines.append(
            f"| {key.replace('-', ' ')} | {wall:.3f} | {seconds:.3f} | {resolver:.4f} "
            f"| {resolver / wall:.1%} | {last['decisions']} | {last['conflicts']} "
            f"| {last['metadata_fetched']} |"
        )
    sent, received = results["ours-warm"][-1].sizes if results.get("ours-warm") else (0, 0)
    md += [
        "",
        "Our `stats` (medians): HTTP wall time at the client, `stats.seconds` (the resolution with its "
        "page loads and metadata fetches), `stats.resolver_seconds` (the resolver's own calls). "
        f"Request body {sent / 1024:.1f} KiB (the environment: markers, tags, CPU), response "
        f"{received / 1024:.1f} KiB (pins, requirements.txt lock, justification).",
        "",
        "| call | wall s | stats.seconds | resolver s | resolver / wall | decisions | conflicts | metadata |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        *stats_lines,
    ]
    if cold is not None and warm:
        md += [
            "",
            "Where the time goes, the same request in-process (index-proxy's services in the benchmark's "
            "process on a fresh state, uvloop, no HTTP, on the proxy's core; warm: the median of "
            f"{WARM_CALLS} calls). Wall time of the driver's candidate steps (merged project page, stored "
            "facts, fitting the files to the machine) and metadata steps (file record, core metadata, "
            "Requires-Dist parsing), the resolver's own time (`stats.resolver_seconds`), and the rest "
            "(request and environment parsing, lock file, justification, the view check); gathers: how "
            "many concurrent batches of candidate and metadata requests the resolver asked for.",
            "",
            "| call | total ms | candidate steps ms | metadata steps ms | resolver ms | rest ms "
            "| gathers (candidates / metadata) |",
            "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
        ]
        middle = _median_breakdown(warm)
        for label, item in (("cold", cold), ("warm", middle)):
            md.append(
                f"| {label} | {_ms(item.total)} | {_ms(item.walls['candidates'])} "
                f"| {_ms(item.walls['requires_dist'])} | {_ms(item.resolver)} | {_ms(item.rest)} "
                f"| {item.bursts['candidates']} / {item.bursts['requires_dist']} |"
            )
        md += [
            "",
            "Inside, wall ms (number of calls) over the whole request, wherever the call came from: "
            "`load_project` (merged page), `facts_for` (one SQL query each), `get_file` (file record by "
            "primary key: in the driver, and again inside `core_metadata`), `core_metadata` (lock, record, "
            "blob lookup and read), blob reads, `parse_email` of each METADATA (on the event loop), the "
            "folder index's sha256 of its files, then the SQL statements sent and the new SQLite "
            "connections the pool opened for them (each an aiosqlite thread plus two PRAGMAs).",
            "",
            "| call | load_project | facts_for | get_file | core_metadata | blob reads | parse_email "
            "| folder sha256 | SQL statements | new connections |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for label, item in (("cold", cold), ("warm", middle)):
            cells = [
                f"{_ms(item.walls[kind])} ({item.counts[kind]})"
                for kind in (
                    "load_project",
                    "facts_for",
                    "get_file",
                    "core_metadata",
                    "blob_read",
                    "parse_email",
                    "folder_sha256",
                )
            ]
            md.append(f"| {label} | {' | '.join(cells)} | {item.sql} | {item.connects} |")
    differences = []
    for key, name in (("uv-cold", "uv"), ("pip-cold", "pip")):
        if results.get(key):
            diff = compare(ours_pins, results[key][0].pins)
            differences.append(
                f"Pins, ours against {name}: " + ("identical." if not diff else "differ: " + "; ".join(diff))
            )
    md += ["", *differences]
    if profile:
        md += ["", "```", *profile, "```"]
    markdown = "\n".join(md) + "\n"
    text = re.sub(r"\*\*|`", "", markdown)
    return text, markdown, met_all


def _median_breakdown(items: Sequence[Breakdown]) -> Breakdown:
    return sorted(items, key=lambda item: item.total)[len(items) // 2]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


# -- main ------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one round (default: 3)")
    parser.add_argument("--rounds", type=int, help="rounds, each with fresh proxies (default 3, --quick 1)")
    parser.add_argument("--skip-pip", action="store_true", help="leave pip out")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="always profile the warm path: py-spy on the server, cProfile in-process "
        "(default: only when a goal is missed)",
    )
    parser.add_argument(
        "--profile-calls", type=int, default=30, help="warm calls profiled, by each profiler (default 30)"
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin the proxy and clients to cores")
    parser.add_argument("--refresh-corpus", action="store_true", help="download the corpus again")
    parser.add_argument("--markdown", type=Path, help="write the results as a markdown fragment here")
    args = parser.parse_args(argv)
    args.rounds = max(1, args.rounds or (1 if args.quick else 3))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    shown = sys.argv[1:] if argv is None else list(argv)
    command = " ".join([".venv/bin/python benchmarks/resolve.py", *shown])
    global PIN, SERVER_CPU, CLIENT_CPU
    PIN = not args.no_pin
    if (os.cpu_count() or 1) < 2:
        SERVER_CPU = CLIENT_CPU = 0
    if PIN:
        with contextlib.suppress(OSError, AttributeError):
            os.sched_setaffinity(0, {CLIENT_CPU})  # this script and its HTTP client stay off the proxy's core
    load_before, busy_before = load_average(), other_busy_processes()
    wheels = build_corpus(args.refresh_corpus)
    payload = resolve_payload(machine_environment())
    with scratch_dir("index-proxy-resolve-bench-") as run:
        results = bench(wheels, payload, args.rounds, not args.skip_pip, run)
        ours_warm, uv_warm = median(results["ours-warm"]), median(results["uv-warm"])
        ours_cold, uv_cold = median(results["ours-cold"]), median(results["uv-cold"])
        missed = ours_warm / uv_warm > GOAL_WARM or ours_cold / uv_cold > GOAL_COLD
        profile_calls = args.profile_calls if (args.profile or missed) else 0
        profile: list[str] = []
        if profile_calls:
            log(f"py-spy of the server over {profile_calls} warm calls")
            profile += py_spy_profile(wheels, payload, run, profile_calls)
        if PIN:
            # The in-process run stands for the server: on the server's core.
            with contextlib.suppress(OSError, AttributeError):
                os.sched_setaffinity(0, {SERVER_CPU})
        log(
            "in-process breakdown" + (f" and cProfile of {profile_calls} warm calls" if profile_calls else "")
        )
        cold, warm, stats = in_process(wheels, payload, run, WARM_CALLS, profile_calls)
    if stats is not None:
        profile += [""] * bool(profile) + summarize_profile(stats, profile_calls)
    notes = machine_notes(load_before, load_average(), busy_before, other_busy_processes())
    text, markdown, _met = render(command, wheels, results, notes, cold, warm, profile)
    print(text)
    if args.markdown:
        args.markdown.write_text(markdown)
        log(f"markdown fragment written to {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
