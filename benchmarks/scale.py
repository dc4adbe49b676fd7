"""Scale-out benchmark: index-proxy replicas on PostgreSQL + S3 against one process on SQLite + a folder.

Run from the repository root::

    .venv/bin/python benchmarks/scale.py [--quick] [--repeat N] [--postgres DSN] [--markdown FILE]

One run does all of this, on 127.0.0.1 only, every loop bounded in time:

1. Corpus: synthetic wheels (incompressible payload) in a static simple index, served by
   ``python -m http.server`` as the upstream. Nothing is downloaded.
2. Shared state: a moto S3 server (``python -m moto.server``) with a new bucket, and a new database on
   the PostgreSQL at ``--postgres`` (dropped at the end).
3. Warm pages: wrk on a project page (PEP 691 JSON, cache warm) for three setups: SQLite + folder
   with one replica (the single-machine default, for reference), PostgreSQL + S3 with one replica,
   and PostgreSQL + S3 with two replicas. With two replicas the connections are split between two
   wrk processes, one per replica, as a balancer would; their counts are added. Reported: req/s and
   req/s per core of replica CPU, the best of ``--repeat`` runs.
4. Cold files: a fresh replica per store fetches every wheel of the corpus once through the proxy
   (upstream -> proxy -> store, streamed to the client), 8 at a time; then the same files again,
   now served from the store. Reported: files/s and MB/s for the folder and for S3.

Nothing is pinned: on this machine's two cores the replicas, wrk, moto and PostgreSQL share both
cores, which caps what a second replica can add (see the printed note). Analysis workers are off
in every replica, so only serving is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
import zipfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _processes import Server, free_port, log, other_busy_processes

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PROJECT_BIN = Path(sys.executable).parent
JSON = "application/vnd.pypi.simple.v1+json"
CONNECTIONS = 32
FILE_CONCURRENCY = 8
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


# -- corpus ----------------------------------------------------------------------------------------


def build_corpus(root: Path, count: int, size: int) -> list[str]:
    """``count`` wheels of about ``size`` bytes under ``root/files``, with a PEP 503 tree beside them."""
    files = root / "files"
    files.mkdir(parents=True)
    projects = []
    for number in range(count):
        name = f"scalepkg{number}"
        wheel = files / f"{name}-1.0-py3-none-any.whl"
        dist_info = f"{name}-1.0.dist-info"
        members = {
            f"{name}/__init__.py": b"",
            f"{name}/data.bin": os.urandom(size),
            f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n".encode(),
            f"{dist_info}/WHEEL": (
                b"Wheel-Version: 1.0\nGenerator: scale-bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
            ),
        }
        record = "".join(
            f"{path},sha256={hashlib.sha256(data).hexdigest()},{len(data)}\n"
            for path, data in members.items()
        )
        with zipfile.ZipFile(wheel, "w", zipfile.ZIP_STORED) as archive:
            for path, data in members.items():
                archive.writestr(path, data)
            archive.writestr(f"{dist_info}/RECORD", record + f"{dist_info}/RECORD,,\n")
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        page = root / "simple" / name
        page.mkdir(parents=True)
        (page / "index.html").write_text(
            f'<!DOCTYPE html><html><body><a href="../../files/{wheel.name}#sha256={digest}">{wheel.name}</a>'
            "</body></html>\n"
        )
        projects.append(name)
    links = "".join(f'<a href="{name}/">{name}</a>\n' for name in projects)
    (root / "simple" / "index.html").write_text(f"<!DOCTYPE html><html><body>{links}</body></html>\n")
    return projects


# -- shared state ----------------------------------------------------------------------------------


def start_upstream(tree: Path, run: Path) -> tuple[Server, str]:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "http.server",
        "--bind",
        "127.0.0.1",
        "--directory",
        str(tree),
        str(port),
    ]
    server = Server("upstream", command, run / "upstream.log")
    server.wait_ready(f"http://127.0.0.1:{port}/simple/")
    return server, f"http://127.0.0.1:{port}/simple/"


def start_moto(run: Path) -> tuple[Server, str]:
    port = free_port()
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    server = Server("moto", command, run / "moto.log", env={**os.environ, **S3_ENV})
    server.wait_ready(f"http://127.0.0.1:{port}/moto-api/")
    return server, f"http://127.0.0.1:{port}"


def create_bucket(endpoint: str) -> str:
    import boto3

    name = f"scale-{uuid.uuid4().hex[:10]}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"],
        region_name=S3_ENV["AWS_DEFAULT_REGION"],
    )
    client.create_bucket(Bucket=name)
    return name


@contextlib.contextmanager
def postgres_database(dsn: str) -> Iterator[str]:
    """A new database on the server of *dsn*, dropped on exit; its ``postgresql://`` URL."""
    import asyncpg

    name = f"index_proxy_scale_{uuid.uuid4().hex[:10]}"

    async def execute(statement: str) -> None:
        connection = await asyncpg.connect(dsn, timeout=10)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    try:
        asyncio.run(execute(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as error:
        raise SystemExit(
            f"scale.py: cannot create a database through {dsn}: {error}; start PostgreSQL or pass --postgres"
        ) from None
    try:
        yield dsn.rsplit("/", 1)[0] + f"/{name}"
    finally:
        asyncio.run(execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# -- replicas --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Storage:
    label: str
    database: str
    blobs: str
    s3_endpoint: str | None = None

    def section(self) -> dict[str, object]:
        section: dict[str, object] = {"database": self.database, "blobs": self.blobs}
        if self.s3_endpoint:
            section["s3"] = {"endpoint_url": self.s3_endpoint, "addressing_style": "path"}
        return section


def start_replica(storage: Storage, upstream: str, run: Path, label: str) -> tuple[Server, int]:
    port = free_port()
    state = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=run))
    config = state / "config.yaml"
    config.write_text(
        json.dumps(
            {
                # No analysis here: background work would be measured along with the serving.
                "server": {"host": "127.0.0.1", "port": port, "page_ttl": 3600, "analysis_workers": 0},
                "storage": storage.section(),
                "indexes": [{"name": "upstream", "url": upstream}],
            }
        )
    )
    command = [str(PROJECT_BIN / "index-proxy"), "serve", "--config", str(config), "--log-level", "warning"]
    server = Server(f"index-proxy {label}", command, state / "server.log", env={**os.environ, **S3_ENV})
    server.wait_ready(f"http://127.0.0.1:{port}/healthz")
    return server, port


def fetch(url: str, accept: str | None = None) -> bytes:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=60) as response:
        return bytes(response.read())


# -- warm pages ------------------------------------------------------------------------------------


_WRK_SCRIPT = """
wrk.headers["Accept"] = "{accept}"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH %d %d %d\\n", summary.requests, summary.duration,
    e.connect + e.read + e.write + e.timeout + e.status))
end
"""


@dataclasses.dataclass(frozen=True)
class PageRun:
    rps: float
    server_cpu: float
    """Cores the replicas used together during the run (1.0 = one whole core)."""
    errors: int

    @property
    def per_core(self) -> float:
        return self.rps / self.server_cpu if self.server_cpu else 0.0


def load_pages(replicas: Sequence[tuple[Server, int]], project: str, seconds: int, run: Path) -> PageRun:
    """wrk against every replica at once, the connections split evenly; counts added up."""
    script = run / "accept.lua"
    script.write_text(_WRK_SCRIPT.format(accept=JSON))
    cpu_before = sum(server.cpu_seconds() for server, _ in replicas)
    started = time.perf_counter()
    loads = [
        subprocess.Popen(
            [
                "wrk",
                "-t1",
                f"-c{CONNECTIONS // len(replicas)}",
                f"-d{seconds}s",
                "--timeout",
                "5s",
                "-s",
                str(script),
                f"http://127.0.0.1:{port}/simple/{project}/",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _, port in replicas
    ]
    requests = errors = 0
    duration = 0.0
    for load in loads:
        out, _ = load.communicate(timeout=seconds + 60)
        line = next(line for line in out.splitlines() if line.startswith("BENCH "))
        count, micros, failed = (int(value) for value in line.split()[1:])
        requests += count
        errors += failed
        duration = max(duration, micros / 1e6)
    elapsed = time.perf_counter() - started
    cpu = (sum(server.cpu_seconds() for server, _ in replicas) - cpu_before) / elapsed
    return PageRun(requests / duration, cpu, errors)


def bench_pages(
    setups: Sequence[tuple[str, Storage, int]],
    upstream: str,
    project: str,
    args: argparse.Namespace,
    run: Path,
) -> dict[str, list[PageRun]]:
    results: dict[str, list[PageRun]] = {label: [] for label, _, _ in setups}
    started: dict[str, list[tuple[Server, int]]] = {}
    try:
        for label, storage, count in setups:
            started[label] = [start_replica(storage, upstream, run, f"{label}-{n}") for n in range(count)]
            for _, port in started[label]:
                for _ in range(2):  # the first fills the page cache, the second proves it warm
                    fetch(f"http://127.0.0.1:{port}/simple/{project}/", JSON)
        # Interleaved, so that every setup sees the same machine.
        for _ in range(args.repeat):
            for label, _, _ in setups:
                load_pages(started[label], project, 1, run)  # warm-up
                result = load_pages(started[label], project, args.seconds, run)
                log(
                    f"pages {label:24} {result.rps:8.0f} req/s, {result.per_core:8.0f} per core,"
                    f" {result.errors} errors"
                )
                results[label].append(result)
    finally:
        for replicas in started.values():
            for server, _ in replicas:
                server.stop()
    return results


# -- cold files ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FileRun:
    files: int
    megabytes: float
    seconds: float
    server_cpu_seconds: float
    store_cpu_seconds: float
    """CPU of the S3 server (moto) during the pass; 0 for a folder."""

    @property
    def files_per_second(self) -> float:
        return self.files / self.seconds

    @property
    def mb_per_second(self) -> float:
        return self.megabytes / self.seconds


def bench_files(
    storage: Storage, upstream: str, projects: Sequence[str], run: Path, moto: Server
) -> tuple[FileRun, FileRun]:
    """(cold, warm): every wheel once through a fresh replica, then again from its store."""
    server, port = start_replica(storage, upstream, run, f"files-{storage.label}")
    base = f"http://127.0.0.1:{port}"
    try:
        urls = []
        for project in projects:
            page = json.loads(fetch(f"{base}/simple/{project}/", JSON))
            urls.append(urllib.parse.urljoin(f"{base}/simple/{project}/", page["files"][0]["url"]))

        def one_pass() -> FileRun:
            cpu_before, moto_before = server.cpu_seconds(), moto.cpu_seconds()
            started = time.perf_counter()
            with ThreadPoolExecutor(FILE_CONCURRENCY) as pool:
                sizes = list(pool.map(lambda url: len(fetch(url)), urls))
            elapsed = time.perf_counter() - started
            moto_cpu = moto.cpu_seconds() - moto_before if storage.s3_endpoint else 0.0
            return FileRun(len(sizes), sum(sizes) / 1e6, elapsed, server.cpu_seconds() - cpu_before, moto_cpu)

        cold = one_pass()
        warm = one_pass()
    finally:
        server.stop()
    for label, measured in (("cold", cold), ("warm", warm)):
        log(
            f"files {storage.label:7} {label}: {measured.files_per_second:6.1f} files/s,"
            f" {measured.mb_per_second:6.1f} MB/s, server cpu {measured.server_cpu_seconds:.1f} s,"
            f" moto cpu {measured.store_cpu_seconds:.1f} s"
        )
    return cold, warm


# -- report ----------------------------------------------------------------------------------------


def render(
    pages: dict[str, list[PageRun]],
    files: dict[str, tuple[FileRun, FileRun]],
    args: argparse.Namespace,
    busy_before: str,
    busy_after: str,
) -> str:
    def median(label: str, attribute: str) -> float:
        return statistics.median(getattr(run, attribute) for run in pages[label])

    lines = [
        f"Machine: {os.cpu_count()} cores; replicas, wrk, moto and PostgreSQL share them (nothing pinned);"
        f" load average at the end {os.getloadavg()[0]:.1f}.",
        f"Other busy processes before: {busy_before}; after: {busy_after}.",
        "",
        f"Warm page `/simple/<project>/` (JSON), {CONNECTIONS} connections, {args.repeat} runs of"
        f" {args.seconds} s per setup, interleaved:",
        "",
        "| setup | replicas | req/s median | req/s best | req/s per replica core (median) | errors |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for label, runs in pages.items():
        setup, replicas = label.rsplit(" x", 1)
        best = max(run.rps for run in runs)
        errors = sum(run.errors for run in runs)
        lines.append(
            f"| {setup} | {replicas} | {median(label, 'rps'):,.0f} | {best:,.0f}"
            f" | {median(label, 'per_core'):,.0f} | {errors} |"
        )
    one, two, sqlite = "PostgreSQL+S3 x1", "PostgreSQL+S3 x2", "SQLite+folder x1"
    lines += [
        "",
        f"- two replicas / one (PostgreSQL+S3), medians: **{median(two, 'rps') / median(one, 'rps'):.2f}x**"
        f" req/s, {median(two, 'per_core') / median(one, 'per_core'):.2f}x per core",
        f"- PostgreSQL+S3 / SQLite+folder, one replica, medians:"
        f" **{median(one, 'rps') / median(sqlite, 'rps'):.2f}x** req/s",
        "",
        f"Files: {files['folder'][0].files} wheels of {args.file_kib} KiB, {FILE_CONCURRENCY} at a time,"
        " through a fresh replica (cold: from the upstream into the store; warm: from the store):",
        "",
        "| store | cold files/s | cold MB/s | warm files/s | warm MB/s | proxy CPU cold / warm"
        " | S3 server CPU cold / warm |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for label, (cold, warm) in files.items():
        proxy_cpu = f"{cold.server_cpu_seconds:.1f} s / {warm.server_cpu_seconds:.1f} s"
        store_cpu = (
            f"{cold.store_cpu_seconds:.1f} s / {warm.store_cpu_seconds:.1f} s" if label == "s3" else "-"
        )
        lines.append(
            f"| {label} | {cold.files_per_second:.1f} | {cold.mb_per_second:.1f}"
            f" | {warm.files_per_second:.1f} | {warm.mb_per_second:.1f} | {proxy_cpu} | {store_cpu} |"
        )
    (folder_cold, folder_warm), (s3_cold, s3_warm) = files["folder"], files["s3"]
    lines += [
        "",
        f"- cold files, S3 / folder: **{s3_cold.mb_per_second / folder_cold.mb_per_second:.2f}x** MB/s",
        f"- warm files, S3 / folder: **{s3_warm.mb_per_second / folder_warm.mb_per_second:.2f}x** MB/s",
        "",
        "Note: with 2 cores, one replica plus its load generator already use most of the machine, so a",
        "second replica can add little; the per-core column shows what each replica costs. The S3 server",
        "is moto (a Python test server) on the same two cores: when the machine is busy, compare the CPU",
        "columns rather than the wall-clock rates.",
    ]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="3 s runs, one repetition, a smaller corpus")
    parser.add_argument("--repeat", type=int, default=3, help="runs per page setup (the best is reported)")
    parser.add_argument("--seconds", type=int, default=10, help="seconds per measured page run")
    parser.add_argument("--files", type=int, default=24, help="wheels in the corpus")
    parser.add_argument("--file-kib", type=int, default=2048, help="payload of each wheel in KiB")
    parser.add_argument(
        "--postgres",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="a PostgreSQL to create the benchmark's database on (dropped at the end)",
    )
    parser.add_argument("--markdown", type=Path, help="also write the report to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeat, args.seconds, args.files, args.file_kib = 1, 3, 8, 512
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not shutil.which("wrk"):
        raise SystemExit("scale.py needs wrk (apt-get install wrk)")
    busy_before = other_busy_processes()
    with tempfile.TemporaryDirectory(prefix="index-proxy-scale-") as scratch:
        run = Path(scratch)
        log(f"corpus: {args.files} wheels of {args.file_kib} KiB")
        projects = build_corpus(run / "tree", args.files, args.file_kib * 1024)
        upstream, upstream_url = start_upstream(run / "tree", run)
        moto, endpoint = start_moto(run)
        try:
            with postgres_database(args.postgres) as database:
                sqlite = Storage("folder", f"sqlite:///{run}/pages.db", str(run / "blobs-pages"))
                shared = Storage("s3", database, f"s3://{create_bucket(endpoint)}/blobs", endpoint)
                setups = [
                    ("SQLite+folder x1", sqlite, 1),
                    ("PostgreSQL+S3 x1", shared, 1),
                    ("PostgreSQL+S3 x2", shared, 2),
                ]
                pages = bench_pages(setups, upstream_url, projects[0], args, run)
                files = {
                    "folder": bench_files(
                        Storage("folder", f"sqlite:///{run}/files.db", str(run / "blobs-files")),
                        upstream_url,
                        projects,
                        run,
                        moto,
                    ),
                    "s3": bench_files(
                        Storage("s3", shared.database, f"s3://{create_bucket(endpoint)}/blobs", endpoint),
                        upstream_url,
                        projects,
                        run,
                        moto,
                    ),
                }
        finally:
            moto.stop()
            upstream.stop()
    report = render(pages, files, args, busy_before, other_busy_processes())
    print(report)
    if args.markdown:
        args.markdown.write_text(report + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
