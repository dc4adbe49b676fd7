"""Serving benchmark: index-proxy against nginx (static files) and proxpi, and pip/uv through it.

Run from the repository root::

    .venv/bin/python benchmarks/serve.py [--quick] [--markdown FRAGMENT.md]

One run does all of this, on 127.0.0.1 only, every loop bounded in time:

1. Corpus: ``pip download --only-binary :all:`` of a common package set (this machine's pip
   configuration, so the index pip is configured with) into ``benchmarks/.cache/wheels`` (reused when
   present), turned into a static simple index (PEP 503 HTML and PEP 691 JSON pages, PEP 658 metadata
   files) under ``benchmarks/.cache/static``. That tree is the upstream and what nginx serves.
2. Servers, each pinned to core 0, all started at once, one under load at a time: nginx (one worker)
   serving the tree; index-proxy whose only index is that nginx; proxpi under gunicorn (its container's
   settings) with the same nginx as its index.
3. Warm load: wrk (pinned to core 1, one thread, 32 connections, ``--latency``) on the project page in
   HTML and JSON, the project list in both, and a PEP 658 ``.metadata`` file; per case a warm-up run
   then a measured run, ``--repeat`` times, interleaved server by server so all see the same machine.
   Reported: req/s, req/s per core of server CPU (robust when other work starves the load generator),
   p50/p99, and how busy each core was.
4. Ratios against the goals: index-proxy / nginx >= 0.25, index-proxy / proxpi >= 10, p99 < 5 ms.
5. pip (``install --dry-run --report``) and uv (``pip compile``) resolving the package set straight
   from nginx and through each proxy, cold (fresh proxy state, fresh client cache) and warm (proxy
   warm, fresh client cache): medians of wall time and ratios to direct. Then cold misses on a fresh
   index-proxy: every page and its ``.metadata``, one after another and all at once.

The peers (proxpi, gunicorn, uv, py-spy, a current pip) live in ``benchmarks/.venv-peers``, created on
first use; nothing is installed into the project's own environment. ``--profile`` adds a py-spy
sampling of index-proxy under the JSON load and prints where its time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import hashlib
import html
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from _processes import (
    Server,
    cpu_model_and_memory,
    first_line,
    free_port,
    log,
    other_busy_processes,
    version_of,
    yes,
)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CACHE = HERE / ".cache"
PEERS = HERE / ".venv-peers"
PROJECT_BIN = Path(sys.executable).parent

PACKAGES = (
    "requests",
    "flask",
    "click",
    "jinja2",
    "markupsafe",
    "werkzeug",
    "itsdangerous",
    "urllib3",
    "idna",
    "certifi",
    "charset-normalizer",
    "attrs",
    "packaging",
    "six",
    "python-dateutil",
    "pyyaml",
    "tomli",
    "typing-extensions",
)
PEER_PACKAGES = ("pip", "proxpi", "gunicorn", "uv", "py-spy")

SERVER_CPU = 0
LOAD_CPU = 1

HTML = "text/html"
JSON = "application/vnd.pypi.simple.v1+json"

GOAL_VS_NGINX = 0.25
GOAL_VS_PROXPI = 10.0
GOAL_P99_MS = 5.0


# -- small helpers ---------------------------------------------------------------------------------


NICE = 0
"""With --nice, servers, wrk and the clients run at this niceness (negative: ahead of other work)."""


def pinned(cpu: int, command: Sequence[str]) -> list[str]:
    command = list(command)
    if NICE:
        command = ["nice", "-n", str(NICE), *command]
    return ["taskset", "-c", str(cpu), *command] if shutil.which("taskset") else command


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_NO_REDIRECT = urllib.request.build_opener(_NoRedirect)


def fetch(
    url: str, accept: str | None = None, timeout: float = 10.0, *, follow: bool = True
) -> tuple[int, str, bytes]:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    opener = urllib.request.urlopen if follow else _NO_REDIRECT.open
    try:
        with opener(request, timeout=timeout) as response:
            return response.status, response.headers.get("content-type", ""), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("content-type", ""), error.read()


def package_version(python: Path, name: str) -> str:
    code = f"import importlib.metadata as m; print(m.version({name!r}))"
    return first_line([str(python), "-c", code])


# -- corpus ----------------------------------------------------------------------------------------


def build_corpus(refresh: bool) -> Path:
    """Wheels of the package set for this Python, from the index pip is configured with."""
    wheels = CACHE / "wheels"
    stamp = wheels / ".complete"
    key = json.dumps({"packages": PACKAGES, "python": platform.python_version()})
    if not refresh and stamp.exists() and stamp.read_text() == key:
        return wheels
    if wheels.exists():
        shutil.rmtree(wheels)
    wheels.mkdir(parents=True)
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
            str(wheels),
            *PACKAGES,
        ],
        check=True,
    )
    stamp.write_text(key)
    return wheels


@dataclasses.dataclass
class Dist:
    project: str
    version: str
    filename: str
    sha256: str
    size: int
    requires_python: str | None
    metadata_sha256: str


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _wheel_metadata(path: Path) -> bytes:
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            parts = name.split("/")
            if len(parts) == 2 and parts[0].endswith(".dist-info") and parts[1] == "METADATA":
                return archive.read(name)
    raise ValueError(f"{path.name} has no .dist-info/METADATA")


def _requires_python(metadata: bytes) -> str | None:
    for line in metadata.decode("utf-8", "replace").splitlines():
        if not line.strip():
            break
        if line.lower().startswith("requires-python:"):
            return line.split(":", 1)[1].strip() or None
    return None


def build_static_tree(wheels: Path) -> tuple[Path, dict[str, list[Dist]]]:
    """A static simple index: simple/<project>/index.{html,json}, files/<wheel>{,.metadata}."""
    static = CACHE / "static"
    if static.exists():
        shutil.rmtree(static)
    files = static / "files"
    files.mkdir(parents=True)
    projects: dict[str, list[Dist]] = collections.defaultdict(list)
    for wheel in sorted(wheels.glob("*.whl")):
        data = wheel.read_bytes()
        metadata = _wheel_metadata(wheel)
        name, version = wheel.name.split("-")[:2]
        dist = Dist(
            project=_canonical(name),
            version=version,
            filename=wheel.name,
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data),
            requires_python=_requires_python(metadata),
            metadata_sha256=hashlib.sha256(metadata).hexdigest(),
        )
        projects[dist.project].append(dist)
        shutil.copyfile(wheel, files / wheel.name)
        (files / f"{wheel.name}.metadata").write_bytes(metadata)
    for project, dists in projects.items():
        folder = static / "simple" / project
        folder.mkdir(parents=True)
        (folder / "index.html").write_text(_project_html(project, dists))
        (folder / "index.json").write_text(_project_json(project, dists))
    names = sorted(projects)
    links = "\n".join(f'<a href="{name}/">{name}</a><br/>' for name in names)
    (static / "simple" / "index.html").write_text(
        '<!DOCTYPE html>\n<html>\n<head>\n<meta name="pypi:repository-version" content="1.1">\n'
        f"<title>Simple index</title>\n</head>\n<body>\n{links}\n</body>\n</html>\n"
    )
    (static / "simple" / "index.json").write_text(
        json.dumps({"meta": {"api-version": "1.1"}, "projects": [{"name": name} for name in names]})
    )
    return static, dict(projects)


def _project_html(project: str, dists: list[Dist]) -> str:
    lines = [
        "<!DOCTYPE html>",
        "<html>",
        "<head>",
        '<meta name="pypi:repository-version" content="1.1">',
        f"<title>Links for {project}</title>",
        "</head>",
        "<body>",
        f"<h1>Links for {project}</h1>",
    ]
    for dist in dists:
        attributes = [f'href="../../files/{dist.filename}#sha256={dist.sha256}"']
        if dist.requires_python:
            attributes.append(f'data-requires-python="{html.escape(dist.requires_python)}"')
        metadata = f"sha256={dist.metadata_sha256}"
        attributes.append(f'data-dist-info-metadata="{metadata}" data-core-metadata="{metadata}"')
        lines.append(f"<a {' '.join(attributes)}>{dist.filename}</a><br/>")
    lines += ["</body>", "</html>", ""]
    return "\n".join(lines)


def _project_json(project: str, dists: list[Dist]) -> str:
    files = []
    for dist in dists:
        entry: dict[str, object] = {
            "filename": dist.filename,
            "url": f"../../files/{dist.filename}",
            "hashes": {"sha256": dist.sha256},
            "core-metadata": {"sha256": dist.metadata_sha256},
            "dist-info-metadata": {"sha256": dist.metadata_sha256},
            "size": dist.size,
        }
        if dist.requires_python:
            entry["requires-python"] = dist.requires_python
        files.append(entry)
    versions = sorted({dist.version for dist in dists})
    return json.dumps(
        {"meta": {"api-version": "1.1"}, "name": project, "versions": versions, "files": files},
        separators=(",", ":"),
    )


# -- peers -----------------------------------------------------------------------------------------


def ensure_peers() -> Path:
    """proxpi, gunicorn, uv, py-spy and a current pip, in their own venv beside this script."""
    python = PEERS / "bin" / "python"
    wanted = [PEERS / "bin" / tool for tool in ("gunicorn", "uv", "py-spy")]
    if python.exists() and all(tool.exists() for tool in wanted):
        return python
    log("creating benchmarks/.venv-peers (proxpi, gunicorn, uv, py-spy, pip)")
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(PEERS)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "-U", *PEER_PACKAGES], check=True)
    return python


# -- processes -------------------------------------------------------------------------------------


def _label(pid: int, name: str) -> str:
    """A process by name; an interpreter with the script it runs (base names only, never paths)."""
    with contextlib.suppress(OSError):
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if name.startswith("python") and len(argv) > 1 and argv[1] and not argv[1].startswith(b"-"):
            return f"{name} {Path(argv[1].decode(errors='replace')).name}"
    return name


def _core_ticks(cpu: int) -> tuple[int, int]:
    """(busy, total) jiffies of one core, from /proc/stat."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{cpu} "):
            values = [int(value) for value in line.split()[1:]]
            idle = values[3] + values[4]
            return sum(values) - idle, sum(values)
    return 0, 0


# -- load ------------------------------------------------------------------------------------------


@dataclasses.dataclass
class LoadResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    server_cpu: float
    """Share of one core the server used during the measured run (1.0 = the whole core)."""
    core_busy: float
    """Share of the server's core that anything used during the run (server plus whatever else ran)."""
    load_core_busy: float
    """Share of the load generator's core that anything used (wrk plus whatever else ran there)."""
    all_rps: tuple[float, ...] = ()
    """Every repetition's req/s, when the case ran more than once (see --keep for which one this is)."""

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def per_core(self) -> float:
        """Requests per second of the server's own CPU time: what one whole core would serve.

        Unlike req/s, this holds when the load generator could not saturate the server (other work on
        its core), which a shared machine makes common.
        """
        return self.rps / self.server_cpu if self.server_cpu else 0.0


_WRK_SCRIPT = """
wrk.headers["Accept"] = "{accept}"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH %d %d %d %d %.1f %.1f\\n", summary.requests, summary.duration,
    e.connect + e.read + e.write + e.timeout, e.status, latency:percentile(50), latency:percentile(99)))
end
"""


def run_load(
    url: str, accept: str, seconds: float, connections: int, server: Server, workdir: Path
) -> LoadResult:
    cpu_before, core_before, load_before = (
        server.cpu_seconds(),
        _core_ticks(SERVER_CPU),
        _core_ticks(LOAD_CPU),
    )
    if shutil.which("wrk"):
        requests, elapsed, errors, p50, p99 = _wrk(url, accept, seconds, connections, workdir)
    else:
        requests, elapsed, errors, p50, p99 = asyncio.run(_python_load(url, accept, seconds, connections))
    cpu_after, core_after, load_after = server.cpu_seconds(), _core_ticks(SERVER_CPU), _core_ticks(LOAD_CPU)
    return LoadResult(
        requests,
        elapsed,
        p50,
        p99,
        errors,
        (cpu_after - cpu_before) / elapsed,
        _busy(core_before, core_after),
        _busy(load_before, load_after),
    )


def _busy(before: tuple[int, int], after: tuple[int, int]) -> float:
    return (after[0] - before[0]) / max(1, after[1] - before[1])


def _wrk(url: str, accept: str, seconds: float, connections: int, workdir: Path) -> tuple:
    script = workdir / "accept.lua"
    script.write_text(_WRK_SCRIPT.format(accept=accept))
    command = pinned(
        LOAD_CPU,
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "5s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
    )
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=True)
    line = next(line for line in done.stdout.splitlines() if line.startswith("BENCH "))
    requests, micros, socket_errors, status_errors, p50, p99 = line.split()[1:]
    return (
        int(requests),
        int(micros) / 1e6,
        int(socket_errors) + int(status_errors),
        float(p50) / 1000,
        float(p99) / 1000,
    )


async def _python_load(url: str, accept: str, seconds: float, connections: int) -> tuple:
    """Fallback when wrk is missing: keep-alive HTTP/1.1 from asyncio (slower than wrk)."""
    parts = urllib.parse.urlsplit(url)
    request = (
        f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\nAccept: {accept}\r\n\r\n"
    ).encode()
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"(?i)content-length:\s*(\d+)", head)
                await reader.readexactly(int(length.group(1)) if length else 0)
                latencies.append(time.perf_counter() - started)
                if not head.startswith((b"HTTP/1.1 2", b"HTTP/1.1 3")):
                    errors += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
    return len(latencies), elapsed, errors, pick(0.50), pick(0.99)


# -- the servers -----------------------------------------------------------------------------------


_NGINX_CONF = """
worker_processes 1;
pid {run}/nginx.pid;
error_log {run}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    client_body_temp_path {run}/client_body;
    proxy_temp_path {run}/proxy;
    fastcgi_temp_path {run}/fastcgi;
    uwsgi_temp_path {run}/uwsgi;
    scgi_temp_path {run}/scgi;
    default_type application/octet-stream;
    # PEP 691 negotiation, as far as a static server can: JSON when the client names it.
    map $http_accept $simple_index {{
        default index.html;
        "~application/vnd\\.pypi\\.simple\\.(v1|latest)\\+json" index.json;
    }}
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location /simple/ {{
            types {{ text/html html; application/vnd.pypi.simple.v1+json json; }}
            index $simple_index;
            add_header Vary Accept;
        }}
    }}
}}
"""


def start_nginx(static: Path, run: Path) -> tuple[Server, int]:
    port = free_port()
    conf = run / "nginx.conf"
    conf.write_text(_NGINX_CONF.format(run=run, port=port, root=static))
    nginx = shutil.which("nginx") or "nginx"
    command = [nginx, "-e", str(run / "nginx-error.log"), "-c", str(conf), "-g", "daemon off;"]
    server = Server("nginx", pinned(SERVER_CPU, command), run / "nginx.out")
    server.wait_ready(f"http://127.0.0.1:{port}/simple/")
    return server, port


def start_index_proxy(upstream: str, run: Path, label: str) -> tuple[Server, int]:
    port = free_port()
    state = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=run))
    config = state / "config.yaml"
    config.write_text(
        json.dumps(
            {
                "server": {"host": "127.0.0.1", "port": port, "page_ttl": 3600},
                "storage": {"database": f"sqlite:///{state}/state.db", "blobs": str(state / "blobs")},
                "indexes": [{"name": "upstream", "url": upstream}],
            }
        )
    )
    command = [str(PROJECT_BIN / "index-proxy"), "serve", "--config", str(config), "--log-level", "warning"]
    server = Server("index-proxy", pinned(SERVER_CPU, command), state / "server.log")
    server.wait_ready(f"http://127.0.0.1:{port}/healthz")
    return server, port


def start_proxpi(upstream: str, run: Path, label: str) -> tuple[Server, int]:
    port = free_port()
    state = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=run))
    env = dict(os.environ)
    env.update(
        PROXPI_INDEX_URL=upstream,
        PROXPI_CACHE_DIR=str(state / "cache"),
        PROXPI_LOGGING_LEVEL="WARNING",
        PROXPI_INDEX_TTL="3600",
    )
    # The settings of proxpi's container image: one gunicorn worker, --preload, 2 threads (the cache
    # lives in the process, so proxpi asks for threads, not processes); its access log left off, as
    # index-proxy's is.
    command = [
        str(PEERS / "bin" / "gunicorn"),
        "--preload",
        "--threads",
        "2",
        "--bind",
        f"127.0.0.1:{port}",
        "--logger-class",
        "proxpi.server._GunicornLogger",
        "proxpi.server:app",
    ]
    server = Server("proxpi", pinned(SERVER_CPU, command), state / "server.log", env=env)
    server.wait_ready(f"http://127.0.0.1:{port}/health")
    return server, port


# -- serving benchmark -----------------------------------------------------------------------------


@dataclasses.dataclass
class Case:
    server: str
    page: str  # "project" or "list"
    format: str  # "html" or "json"
    path: str
    body_bytes: int = 0
    content_type: str = ""
    result: LoadResult | None = None
    per_core: float = 0.0
    """Median over the repeated runs of LoadResult.per_core."""
    note: str = ""


def _cases(server: str, base: str, project: str) -> list[Case]:
    return [
        Case(server, "project", "html", f"{base}{project}/"),
        Case(server, "project", "json", f"{base}{project}/"),
        Case(server, "list", "html", base),
        Case(server, "list", "json", base),
        # PEP 658 core metadata of the page's first file: pip and uv fetch one per candidate.
        Case(server, "metadata", "-", f"{base}{project}/"),
    ]


def _metadata_path(port: int, page_path: str) -> str:
    """The path of the .metadata file of the first file listed on a project page, as the server links it."""
    page_url = f"http://127.0.0.1:{port}{page_path}"
    status, _, body = fetch(page_url, JSON)
    if status != 200:
        raise RuntimeError(f"{page_url}: HTTP {status}")
    return urllib.parse.urlsplit(urllib.parse.urljoin(page_url, json.loads(body)["files"][0]["url"])).path


@dataclasses.dataclass
class Target:
    name: str
    server: Server
    port: int
    base: str
    """Where its simple index lives: /simple/ or proxpi's /index/."""


def _prepare(target: Target, case: Case) -> str | None:
    """Warm the case on its server and check the answer; the URL to load, or None (see case.note)."""
    accept = _accept(case)
    if case.page == "metadata":
        case.path = _metadata_path(target.port, case.path) + ".metadata"
    url = f"http://127.0.0.1:{target.port}{case.path}"
    for _ in range(2):  # fill every cache on the way (upstream page, rendered page, stored file)
        status, content_type, body = fetch(url, accept, follow=False)
        time.sleep(0.2 if status != 200 else 0)  # a proxy may still be storing what it fetched
    case.body_bytes, case.content_type = len(body), content_type.split(";")[0].strip()
    if status != 200:
        case.note = f"answers HTTP {status} (not measured)"
        return None
    if case.format == "json" and "json" not in case.content_type:
        case.note = f"answers {case.content_type} to a JSON request"
        return None
    return url


def _accept(case: Case) -> str:
    return {"json": JSON, "html": HTML}.get(case.format, "*/*")


def bench_serving(targets: list[Target], project: str, args: argparse.Namespace, run: Path) -> list[Case]:
    """Each case on every server in turn, --repeat rounds, so all of them see the same machine."""
    table = {target.name: _cases(target.name, target.base, project) for target in targets}
    urls = {
        (target.name, index): _prepare(target, case)
        for target in targets
        for index, case in enumerate(table[target.name])
    }
    results: dict[tuple[str, int], list[LoadResult]] = collections.defaultdict(list)
    for index in range(len(table[targets[0].name])):
        for _ in range(args.repeat):
            for target in targets:
                case, url = table[target.name][index], urls[(target.name, index)]
                if url is None:
                    continue
                accept = _accept(case)
                if args.warmup > 0:
                    run_load(url, accept, args.warmup, args.connections, target.server, run)
                result = run_load(url, accept, args.duration, args.connections, target.server, run)
                results[(target.name, index)].append(result)
                log(
                    f"{case.server:11} {case.page:8} {case.format:4} {result.rps:9.0f} req/s"
                    f" ({result.per_core:6.0f} per core)"
                    f"  p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms"
                    f"  server cpu {result.server_cpu:4.0%}  core {SERVER_CPU} busy {result.core_busy:4.0%}"
                    f"  core {LOAD_CPU} busy {result.load_core_busy:4.0%}"
                )
    cases = []
    for target in targets:
        for index, case in enumerate(table[target.name]):
            cases.append(case)
            runs = sorted(results.get((target.name, index), []), key=lambda result: result.rps)
            if not runs:
                continue
            # Other work on the machine only ever slows a run down, so the fastest run is the closest to
            # the undisturbed speed; --keep median reports the middle one instead.
            kept = runs[-1] if args.keep == "best" else runs[len(runs) // 2]
            case.result = dataclasses.replace(kept, all_rps=tuple(result.rps for result in runs))
            case.per_core = statistics.median(result.per_core for result in runs)
            if case.result.server_cpu < 0.9:
                case.note = "server not saturated: the load generator was the limit (or was disturbed)"
    return cases


# -- profiling -------------------------------------------------------------------------------------


def profile_index_proxy(
    server: Server, port: int, project: str, args: argparse.Namespace, run: Path
) -> list[str]:
    """py-spy samples index-proxy under the JSON project-page load; returns a summary."""
    py_spy = PEERS / "bin" / "py-spy"
    raw = run / "index-proxy.collapsed"
    seconds = max(3, round(args.profile))
    recorder = subprocess.Popen(
        pinned(
            LOAD_CPU,
            [
                str(py_spy),
                "record",
                "--pid",
                str(server.process.pid),
                "--rate",
                "250",
                "--duration",
                str(seconds),
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
    url = f"http://127.0.0.1:{port}/simple/{project}/"
    run_load(url, JSON, seconds + 1, args.connections, server, run)
    recorder.wait(timeout=seconds + 60)
    if args.profile_out:
        shutil.copyfile(raw, args.profile_out)
    return summarize_profile(raw)


def _frame_key(frame: str) -> str:
    # py-spy frames: "function (path/to/module.py:line)"; keep the function and the file's last parts.
    match = re.match(r"(.*) \((.*?):\d+\)$", frame.strip())
    if not match:
        return frame.strip()
    function, path = match.groups()
    tail = "/".join(Path(path).parts[-2:])
    return f"{function} ({tail})"


def summarize_profile(raw: Path, top: int = 18) -> list[str]:
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    area: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_key(frame) for frame in stack.split(";") if frame.strip()]
        if not frames or frames[-1].startswith(_IDLE_LEAVES):
            continue
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
        area[_area(stack)] += count
    if not total:
        return ["(no samples: is py-spy allowed to attach here?)"]
    lines = [f"{total} samples; where the time goes, by layer (innermost matching frame):"]
    lines += [f"  {share / total:6.1%}  {name}" for name, share in area.most_common()]
    lines.append("own time, top frames:")
    lines += [f"  {count / total:6.1%}  {name}" for name, count in own.most_common(top)]
    lines.append("inclusive time, index-proxy frames:")
    ours = [
        (name, count)
        for name, count in inclusive.most_common()
        if "index_proxy/" in name and "cli.py" not in name
    ]
    lines += [f"  {count / total:6.1%}  {name}" for name, count in ours[:top]]
    return lines


# Threads that wait for work (SQLite's worker threads of aiosqlite, idle under a warm load) are sampled
# as if busy, since they wait in C; their samples are left out.
_IDLE_LEAVES = ("_connection_worker_thread ", "Condition.wait ", "Thread._wait_for_tstate_lock ")

_AREAS = (
    ("index_proxy/simple_view.py", "index-proxy simple_view (routing, negotiation, headers)"),
    ("index_proxy/pages.py", "index-proxy pages (cache lookup)"),
    ("index_proxy/metrics.py", "index-proxy metrics"),
    ("index_proxy/simple/negotiate.py", "index-proxy Accept negotiation"),
    ("prometheus_client/", "prometheus_client"),
    ("packaging/", "packaging (canonicalize_name)"),
    ("uvicorn/protocols/", "uvicorn HTTP protocol (httptools; includes the socket writes)"),
    ("uvicorn/", "uvicorn other"),
    ("asyncio/", "asyncio / uvloop"),
)


def _area(stack: str) -> str:
    frames = stack.split(";")
    for frame in reversed(frames):
        for needle, label in _AREAS:
            if needle in frame:
                return label
    return "other"


# -- clients ---------------------------------------------------------------------------------------


@dataclasses.dataclass
class ClientRow:
    client: str
    route: str
    seconds: list[float]
    resolved: int
    mismatch: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.seconds) if self.seconds else float("nan")


def _client_env(cache_dir: Path, xdg: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PIP_", "UV_"))}
    # No pip configuration at all: the user's file is skipped when PIP_CONFIG_FILE names an existing
    # file, and the global ones are looked up under XDG_CONFIG_DIRS (pointed at an empty folder).
    env.update(PIP_CONFIG_FILE=os.devnull, XDG_CONFIG_DIRS=str(xdg), UV_CACHE_DIR=str(cache_dir))
    return env


def run_client(client: str, index_url: str, reqs: Path, scratch: Path) -> tuple[float, set[str]]:
    cache_dir = Path(tempfile.mkdtemp(prefix=f"{client}-cache-", dir=scratch))
    xdg = scratch / "xdg-empty"
    xdg.mkdir(exist_ok=True)
    python = PEERS / "bin" / "python"
    if client == "pip":
        command = [
            str(python),
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--ignore-installed",
            "--quiet",
            "--report",
            "-",
            "--disable-pip-version-check",
            "--no-input",
            "--cache-dir",
            str(cache_dir),
            "--index-url",
            index_url,
            "-r",
            str(reqs),
        ]
    else:
        command = [
            str(PEERS / "bin" / "uv"),
            "pip",
            "compile",
            "--no-config",
            "--quiet",
            "--no-header",
            "--no-annotate",
            "--python",
            str(python),
            "--index-url",
            index_url,
            str(reqs),
        ]
    started = time.perf_counter()
    done = subprocess.run(
        pinned(LOAD_CPU, command),
        capture_output=True,
        text=True,
        env=_client_env(cache_dir, xdg),
        timeout=600,
        check=False,
    )
    elapsed = time.perf_counter() - started
    shutil.rmtree(cache_dir, ignore_errors=True)
    if done.returncode != 0:
        raise RuntimeError(f"{client} via {index_url} failed:\n{done.stderr[-3000:]}")
    if client == "pip":
        report = json.loads(done.stdout)
        pins = {
            f"{_canonical(item['metadata']['name'])}=={item['metadata']['version']}"
            for item in report["install"]
        }
    else:
        pins = {
            _canonical(line.split("==")[0]) + "==" + line.split("==")[1].strip()
            for line in done.stdout.splitlines()
            if "==" in line and not line.startswith("#")
        }
    return elapsed, pins


def bench_clients(
    nginx_port: int, reqs: Path, args: argparse.Namespace, run: Path, with_proxpi: bool
) -> list[ClientRow]:
    rows: list[ClientRow] = []
    direct = f"http://127.0.0.1:{nginx_port}/simple/"
    proxies = [("index-proxy", start_index_proxy, "/simple/")]
    if with_proxpi:
        proxies.append(("proxpi", start_proxpi, "/index/"))
    for client in ("pip", "uv"):
        # One untimed run first, so the first timed one does not pay for a cold OS file cache.
        run_client(client, direct, reqs, run)
        reference: set[str] | None = None
        row = ClientRow(client, "direct (nginx)", [], 0)
        for _ in range(args.client_runs):
            seconds, pins = run_client(client, direct, reqs, run)
            row.seconds.append(seconds)
            reference = reference or pins
        row.resolved = len(reference or ())
        rows.append(row)
        log(f"{client:3} {row.route:24} median {row.median:6.2f} s  ({row.resolved} pins)")
        for name, start, base in proxies:
            cold = ClientRow(client, f"{name} cold", [], 0)
            warm = ClientRow(client, f"{name} warm", [], 0)
            for _ in range(args.client_runs):
                # Fresh proxy state each round: new process, new database and blob folder.
                server, port = start(direct, run, f"{name}-{client}")
                try:
                    url = f"http://127.0.0.1:{port}{base}"
                    for row in (cold, warm):
                        seconds, pins = run_client(client, url, reqs, run)
                        row.seconds.append(seconds)
                        row.resolved = len(pins)
                        if reference is not None and pins != reference:
                            row.mismatch = ", ".join(sorted(pins ^ reference))
                finally:
                    server.stop()
            for row in (cold, warm):
                rows.append(row)
                log(f"{client:3} {row.route:24} median {row.median:6.2f} s  ({row.resolved} pins)")
    return rows


@dataclasses.dataclass
class ColdRound:
    wall_ms: float
    page_p50: float
    page_max: float
    meta_p50: float
    meta_max: float
    cpu_ms: float


def bench_cold_misses(
    nginx_port: int, projects: Sequence[str], rounds: int, run: Path
) -> list[tuple[str, list[ColdRound]]]:
    """Every project page and its core metadata from a fresh index-proxy, serially and all at once."""
    from concurrent.futures import ThreadPoolExecutor
    from urllib.parse import urljoin

    def one(port: int, project: str) -> tuple[float, float]:
        page_url = f"http://127.0.0.1:{port}/simple/{project}/"
        started = time.perf_counter()
        status, _, body = fetch(page_url, JSON)
        page_ms = (time.perf_counter() - started) * 1000
        if status != 200:
            raise RuntimeError(f"{page_url}: HTTP {status}")
        metadata_url = urljoin(page_url, json.loads(body)["files"][0]["url"]) + ".metadata"
        started = time.perf_counter()
        status, _, _ = fetch(metadata_url)
        if status != 200:
            raise RuntimeError(f"{metadata_url}: HTTP {status}")
        return page_ms, (time.perf_counter() - started) * 1000

    results: list[tuple[str, list[ColdRound]]] = []
    for mode in ("one after another", "all at once"):
        measured = []
        for _ in range(rounds):
            server, port = start_index_proxy(f"http://127.0.0.1:{nginx_port}/simple/", run, "cold")
            try:
                cpu_before, started = server.cpu_seconds(), time.perf_counter()
                if mode == "all at once":
                    with ThreadPoolExecutor(len(projects)) as pool:
                        timings = list(pool.map(one, [port] * len(projects), projects))
                else:
                    timings = [one(port, project) for project in projects]
                wall = (time.perf_counter() - started) * 1000
                cpu = (server.cpu_seconds() - cpu_before) * 1000
            finally:
                server.stop()
            pages = [page for page, _ in timings]
            metas = [meta for _, meta in timings]
            measured.append(
                ColdRound(
                    wall, statistics.median(pages), max(pages), statistics.median(metas), max(metas), cpu
                )
            )
        middle = sorted(measured, key=lambda item: item.wall_ms)[len(measured) // 2]
        log(
            f"cold misses {mode:17} {middle.wall_ms:6.0f} ms wall, page p50 {middle.page_p50:.1f} ms,"
            f" server cpu {middle.cpu_ms:.0f} ms"
        )
        results.append((mode, measured))
    return results


# -- report ----------------------------------------------------------------------------------------


def _short(path: str) -> str:
    """A file path for the table: its folder's first part, an ellipsis, and the file name."""
    parts = path.strip("/").split("/")
    return f"/{parts[0]}/…/{parts[-1]}" if len(parts) > 2 else path


def _ms(value: float) -> str:
    return f"{value:.2f}"


def _machine_notes(args: argparse.Namespace, load_before: str, load_after: str) -> list[str]:
    model, _ = cpu_model_and_memory()
    python = PEERS / "bin" / "python"
    load_tool = "wrk " + version_of(["wrk", "--version"]) if shutil.which("wrk") else "python asyncio client"
    return [
        f"CPU: {os.cpu_count()} x {model}; Linux {platform.release()}; Python {platform.python_version()}",
        f"servers pinned to core {SERVER_CPU} (taskset), load generator and clients to core {LOAD_CPU}"
        + (f", all of them at niceness {NICE}" if NICE else ""),
        f"load: {load_tool}, 1 thread, {args.connections} connections, {args.warmup:g} s warm-up then "
        f"{args.duration:g} s measured per case; no Accept-Encoding (identity bodies)",
        f"{args.repeat} measured run(s) per case, the {'fastest' if args.keep == 'best' else 'median'} "
        "reported (with its own latencies), the range of req/s in brackets; req/s per core = req/s "
        "divided by the share of a core the server used, median over the runs",
        "versions: nginx {} (1 worker), uvicorn {} (uvloop {}, httptools {}), starlette {}, proxpi {} on "
        "gunicorn {} (1 worker, --preload, --threads 2), pip {}, uv {}".format(
            version_of(["nginx", "-v"]),
            package_version(Path(sys.executable), "uvicorn"),
            package_version(Path(sys.executable), "uvloop"),
            package_version(Path(sys.executable), "httptools"),
            package_version(Path(sys.executable), "starlette"),
            package_version(python, "proxpi"),
            package_version(python, "gunicorn"),
            package_version(python, "pip"),
            version_of([str(PEERS / "bin" / "uv"), "--version"]),
        ),
        f"load average (1/5/15 min) before: {load_before}; after: {load_after}",
        f"index-proxy source: {_revision()}",
    ]


def _revision() -> str:
    head = first_line(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    diff = subprocess.run(
        ["git", "-C", str(ROOT), "diff", "HEAD", "--", "index_proxy"],
        capture_output=True,
        check=False,
    ).stdout
    if not diff.strip():
        return f"commit {head}"
    # Other work may sit uncommitted in the tree: name that state by a hash of its diff.
    fingerprint = hashlib.sha256(diff).hexdigest()[:10]
    return f"commit {head} plus uncommitted changes under index_proxy/ (diff sha256 {fingerprint})"


def render(
    cases: list[Case],
    clients: list[ClientRow],
    project: str,
    corpus: dict[str, list[Dist]],
    notes: list[str],
    profile: list[str],
    command: str,
    cold: list[tuple[str, list[ColdRound]]],
) -> tuple[str, str]:
    """(plain text for the terminal, markdown fragment)."""
    by = {(case.server, case.page, case.format): case for case in cases}
    wheels = sum(len(dists) for dists in corpus.values())
    md: list[str] = [
        f"Command: `{command}`",
        "",
        f"Corpus: {len(PACKAGES)} requirements resolved to {len(corpus)} projects, {wheels} wheels "
        f"(one version each); project page measured: `{project}`.",
        "",
        *[f"- {note}" for note in notes],
        "",
        f"| server | page | format | req/s | req/s per core | p50 ms | p99 ms | body bytes | server CPU "
        f"| core {SERVER_CPU} busy | core {LOAD_CPU} busy | errors | note |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for case in cases:
        if case.page == "metadata":
            page = f"`{_short(case.path)}`"
        else:
            page = f"`/simple/{project}/`" if case.page == "project" else "`/simple/`"
            if case.server == "proxpi":
                page = page.replace("/simple/", "/index/")
        if case.result is None:
            cells = [
                case.server,
                page,
                case.format,
                "—",
                "—",
                "—",
                "—",
                f"{case.body_bytes:,}",
                "",
                "",
                "",
                "",
            ]
            md.append("| " + " | ".join([*cells, case.note]) + " |")
            continue
        result = case.result
        rps = f"{result.rps:,.0f}"
        if len(result.all_rps) > 1:
            rps += f" ({min(result.all_rps) / 1000:.1f}k to {max(result.all_rps) / 1000:.1f}k)"
        md.append(
            f"| {case.server} | {page} | {case.format} | {rps} | {case.per_core:,.0f} | {_ms(result.p50_ms)} "
            f"| {_ms(result.p99_ms)} | {case.body_bytes:,} | {result.server_cpu:.0%} "
            f"| {result.core_busy:.0%} | {result.load_core_busy:.0%} | {result.errors} | {case.note} |"
        )
    md += [
        "",
        "| ratio | page | format | measured req/s | per core | goal | met (measured / per core) |",
        "| --- | --- | --- | ---: | ---: | --- | --- |",
    ]
    for page, fmt in (
        ("project", "html"),
        ("project", "json"),
        ("list", "html"),
        ("list", "json"),
        ("metadata", "-"),
    ):
        ours = by.get(("index-proxy", page, fmt))
        if ours is None or ours.result is None:
            continue
        # The goals are for simple pages; the metadata files are shown for what pip and uv see.
        simple = page != "metadata"
        for peer, goal in (("nginx", GOAL_VS_NGINX), ("proxpi", GOAL_VS_PROXPI)):
            theirs = by.get((peer, page, fmt))
            if theirs is None or theirs.result is None or not theirs.result.rps:
                continue
            ratio = ours.result.rps / theirs.result.rps
            core_ratio = ours.per_core / theirs.per_core if theirs.per_core else float("nan")
            met = f"{yes(ratio >= goal)} / {yes(core_ratio >= goal)}" if simple else "(no goal)"
            shown_goal = f"≥ {goal:g}" if simple else "—"
            md.append(
                f"| index-proxy / {peer} | {page} | {fmt} | {ratio:.2f} | {core_ratio:.2f} "
                f"| {shown_goal} | {met} |"
            )
        if not simple:
            continue
        p99 = f"{_ms(ours.result.p99_ms)} ms"
        met = yes(ours.result.p99_ms < GOAL_P99_MS)
        md.append(f"| index-proxy p99 | {page} | {fmt} | {p99} | | < {GOAL_P99_MS:g} ms | {met} |")
    if clients:
        md += [
            "",
            "| client | index | median s | runs s | / direct | pins |",
            "| --- | --- | ---: | --- | ---: | ---: |",
        ]
        direct = {row.client: row.median for row in clients if row.route.startswith("direct")}
        for row in clients:
            ratio = row.median / direct[row.client] if direct.get(row.client) else float("nan")
            runs = ", ".join(f"{value:.2f}" for value in row.seconds)
            pins = f"{row.resolved}" + (f" (differs: {row.mismatch})" if row.mismatch else "")
            md.append(f"| {row.client} | {row.route} | {row.median:.2f} | {runs} | {ratio:.2f} | {pins} |")
    if cold:
        md += [
            "",
            f"Cold misses, fresh index-proxy: every project page (JSON) of the corpus and its `.metadata`, "
            f"one after another or all at once ({len(corpus)} threads); median of {len(cold[0][1])} rounds.",
            "",
            "| requests | wall ms | page ms p50 / max | metadata ms p50 / max | server CPU ms |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for mode, rounds in cold:
            middle = sorted(rounds, key=lambda item: item.wall_ms)[len(rounds) // 2]
            md.append(
                f"| {mode} | {middle.wall_ms:.0f} | {middle.page_p50:.1f} / {middle.page_max:.1f} "
                f"| {middle.meta_p50:.1f} / {middle.meta_max:.1f} | {middle.cpu_ms:.0f} |"
            )
    if profile:
        md += ["", "py-spy, index-proxy under the JSON project-page load:", "", "```", *profile, "```"]
    markdown = "\n".join(md) + "\n"
    text = re.sub(r"\*\*|`", "", markdown)
    return text, markdown


# -- main ------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 s runs, 1 s warm-up, 1 client run each")
    parser.add_argument("--duration", type=float, help="seconds measured per case (default 10)")
    parser.add_argument("--warmup", type=float, help="seconds of warm-up load per case (default 2)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="niceness for servers, wrk and clients (e.g. -10, as root: ahead of other work on a busy box)",
    )
    parser.add_argument("--repeat", type=int, help="measured runs per case (default 1)")
    parser.add_argument(
        "--keep",
        choices=("best", "median"),
        default="best",
        help="which of the repeated runs to report (default: best, the least disturbed)",
    )
    parser.add_argument("--client-runs", type=int, help="pip/uv runs per route (default 3)")
    parser.add_argument("--project", help="project page to load (default: the largest page)")
    parser.add_argument("--skip-proxpi", action="store_true")
    parser.add_argument("--skip-serving", action="store_true", help="leave out the load runs")
    parser.add_argument("--skip-clients", action="store_true", help="leave out the pip/uv resolution")
    parser.add_argument("--profile", type=float, default=0, help="seconds of py-spy on index-proxy")
    parser.add_argument("--profile-out", type=Path, help="keep py-spy's collapsed stacks here")
    parser.add_argument("--refresh-corpus", action="store_true", help="download the corpus again")
    parser.add_argument("--markdown", type=Path, help="write the results as a markdown fragment here")
    args = parser.parse_args(argv)
    args.duration = args.duration or (3.0 if args.quick else 10.0)
    args.warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 2.0)
    args.client_runs = args.client_runs or (1 if args.quick else 3)
    args.repeat = max(1, args.repeat or 1)
    return args


@contextlib.contextmanager
def scratch_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="index-proxy-bench-"))
    os.chmod(path, 0o755)  # nginx workers run as an unprivileged user and read nothing from here
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    shown = sys.argv[1:] if argv is None else list(argv)
    command = " ".join([".venv/bin/python benchmarks/serve.py", *shown])
    global SERVER_CPU, LOAD_CPU, NICE
    NICE = args.nice
    if (os.cpu_count() or 1) < 2:
        SERVER_CPU = LOAD_CPU = 0
        log("only one core: servers and load share it, ratios still compare, absolute numbers do not")
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setaffinity(0, {LOAD_CPU})  # this script, wrk and the clients stay off the servers' core
    if not shutil.which("nginx"):
        log("nginx is missing: apt-get install nginx-light (or nginx)")
        return 2
    if not shutil.which("wrk"):
        log("wrk is missing (apt-get install wrk); falling back to a Python client, which is slower")
    load_before = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    others_before = other_busy_processes(label=_label)
    ensure_peers()
    wheels = build_corpus(args.refresh_corpus)
    static, corpus = build_static_tree(wheels)
    project = args.project or max(
        corpus, key=lambda name: (static / "simple" / name / "index.html").stat().st_size
    )
    cases: list[Case] = []
    clients: list[ClientRow] = []
    profile: list[str] = []
    cold: list[tuple[str, list[ColdRound]]] = []
    with scratch_dir() as run:
        reqs = run / "requirements.txt"
        reqs.write_text("\n".join(PACKAGES) + "\n")
        nginx, nginx_port = start_nginx(static, run)
        servers: list[Server] = [nginx]
        try:
            upstream = f"http://127.0.0.1:{nginx_port}/simple/"
            targets = [Target("nginx", nginx, nginx_port, "/simple/")]
            if not args.skip_serving or args.profile:
                server, port = start_index_proxy(upstream, run, "index-proxy-warm")
                servers.append(server)
                targets.append(Target("index-proxy", server, port, "/simple/"))
            if not args.skip_serving and not args.skip_proxpi:
                server, port = start_proxpi(upstream, run, "proxpi-warm")
                servers.append(server)
                targets.append(Target("proxpi", server, port, "/index/"))
            if not args.skip_serving:
                cases = bench_serving(targets, project, args, run)
            if args.profile:
                proxy = next(target for target in targets if target.name == "index-proxy")
                profile = profile_index_proxy(proxy.server, proxy.port, project, args, run)
            for server in servers[1:]:
                server.stop()
            if not args.skip_clients:
                clients = bench_clients(nginx_port, reqs, args, run, with_proxpi=not args.skip_proxpi)
                cold = bench_cold_misses(nginx_port, sorted(corpus), args.client_runs, run)
        finally:
            for server in reversed(servers):
                server.stop()
    load_after = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    notes = _machine_notes(args, load_before, load_after)
    notes.append(
        f"other busy processes (share of a core, 1 s samples) at start: {others_before}; "
        f"at end: {other_busy_processes(label=_label)}"
    )
    text, markdown = render(cases, clients, project, corpus, notes, profile, command.strip(), cold)
    print(text)
    if args.markdown:
        args.markdown.write_text(markdown)
        log(f"markdown fragment written to {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
