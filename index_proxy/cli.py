"""The ``index-proxy`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from index_proxy.config import Config, ConfigError, default_config, load_config
from index_proxy.store.blobs import BlobStoreUnavailable

# Mirrored here, not imported from index_proxy.client.lock: building the parser must not import httpx
# and the resolver for commands that never lock. tests/test_cli_lock.py checks the two agree.
LOCK_FORMATS = ("requirements.txt", "Pipfile.lock", "pylock.toml")
DEFAULT_SERVER = "http://127.0.0.1:8000"

__all__ = ["main"]


def _load(path: str | None) -> Config:
    if path is None:
        return default_config(Path.cwd())
    return load_config(path)


def _serve(args: argparse.Namespace) -> int:
    import dataclasses

    import uvicorn

    from index_proxy.app import create_app
    from index_proxy.logs import setup_logging

    config = _load(args.config)
    server = dataclasses.replace(
        config.server,
        host=args.host if args.host is not None else config.server.host,
        port=args.port if args.port is not None else config.server.port,
    )
    config = dataclasses.replace(config, server=server)
    setup_logging(args.log_level)
    # uvicorn reports a failed start-up as a traceback; a missing bucket deserves one clear line.
    _check_blob_store(config)
    uvicorn.run(
        create_app(config),
        host=server.host,
        port=server.port,
        log_config=None,
        access_log=args.access_log,
        proxy_headers=True,
        server_header=False,
    )
    return 0


def _check_blob_store(config: Config) -> None:
    import asyncio

    from index_proxy.store.blobs import open_blob_store

    async def check() -> None:
        async with open_blob_store(config.storage, config.source):
            pass

    if config.storage.blobs.startswith("s3://"):
        asyncio.run(check())


def _worker(args: argparse.Namespace) -> int:
    import asyncio
    import signal

    from index_proxy.analysis import AnalysisWorker, Monitor
    from index_proxy.logs import setup_logging
    from index_proxy.services import open_services

    config = _load(args.config)
    setup_logging(args.log_level)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        async with open_services(config) as services:
            tasks = [asyncio.create_task(AnalysisWorker(services).run(stop)) for _ in range(args.concurrency)]
            if args.monitor:
                tasks.append(asyncio.create_task(Monitor(services).run(stop)))
            await asyncio.gather(*tasks)

    asyncio.run(run())
    return 0


def _check_config(args: argparse.Namespace) -> int:
    config = _load(args.config)
    print(
        f"{args.config or '(default)'}: OK, {len(config.indexes)} index(es): "
        + ", ".join(i.name for i in config.indexes)
    )
    return 0


def _analyze(args: argparse.Namespace) -> int:
    """``analyze PATH|URL...``: the analyzers' facts for local or downloaded wheels and sdists."""
    import json
    import os
    from urllib.parse import unquote, urlsplit

    import httpx

    from analyzers import Facts, Finding, analyze

    suffixes = (".whl", ".tar.gz", ".zip")

    def expand(target: str) -> list[str | Path]:
        """One argument as the inputs it names; ValueError (naming it) when it cannot be read."""
        if target.startswith(("http://", "https://")):
            return [target]
        path = Path(target)
        if path.is_dir() and os.access(path, os.R_OK | os.X_OK):
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.name.lower().endswith(suffixes))
            if not found:
                raise ValueError(f"{target}: no .whl, .tar.gz or .zip files in this directory")
            return list(found)
        if path.is_file() and os.access(path, os.R_OK):
            return [path]
        raise ValueError(f"{target}: not a readable file or directory")

    def fetch(client: httpx.Client, url: str) -> Facts:
        name = unquote(urlsplit(url).path.rsplit("/", 1)[-1]) or url
        try:
            response = client.get(url)
            response.raise_for_status()
        except httpx.HTTPError as error:
            finding = Finding("download-failed", "error", f"{url}: {type(error).__name__}: {error}")
            return Facts(filename=name, sha256="", size=0, kind="unknown", findings=(finding,))
        return analyze(response.content, name)

    def progress(done: int, total: int, label: str) -> None:
        width = 30
        filled = width * done // total
        line = f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {label}"[:100]
        sys.stderr.write("\r" + line.ljust(100) + ("\n" if done == total else ""))
        sys.stderr.flush()

    def value(item: object) -> str:
        return "-" if item is None or item == () else str(item)

    def claimed(facts: Facts) -> str:
        if facts.abi is not None and facts.abi.claimed_tags:
            return ", ".join(facts.abi.claimed_tags)
        # No ELF files, so no ABI facts: the filename's platform tag is still what the file claims.
        parts = facts.filename.removesuffix(".whl").split("-")
        return parts[-1] if facts.kind == "wheel" and len(parts) >= 5 else "-"

    def table(facts: Facts) -> str:
        meta, abi, cpu, cuda = facts.metadata, facts.abi, facts.cpu, facts.cuda
        rows = [
            ("kind", facts.kind),
            ("name / version", f"{value(meta and meta.name)} {value(meta and meta.version)}"),
            ("requires-python", value(meta and meta.requires_python)),
            ("min glibc", value(abi and abi.min_glibc)),
            ("computed tag", value(abi and abi.computed_tag)),
            ("claimed tags", claimed(facts)),
            ("mis-tagged", "-" if abi is None else ("yes" if abi.mis_tagged else "no")),
            ("cpu level", "-" if cpu is None else f"{value(cpu.level)} ({cpu.source})"),
            ("cuda", "-" if cuda is None else value(cuda.cuda_version or cuda.cuda_major)),
        ]
        rows += [
            ("finding", f"{f.severity} {f.code}" + (f" {f.path}" if f.path else "") + f": {f.message}")
            for f in facts.findings
        ] or [("findings", "none")]
        return "\n".join([facts.filename, *(f"  {key:<16} {text}" for key, text in rows)])

    try:
        inputs = [item for target in args.targets for item in expand(target)]
    except ValueError as error:
        print(f"index-proxy analyze: {error}", file=sys.stderr)
        return 2
    show_progress = len(inputs) > 1 and sys.stderr.isatty()
    results: list[Facts] = []
    with httpx.Client(follow_redirects=True, timeout=httpx.Timeout(30.0, read=300.0)) as client:
        for number, item in enumerate(inputs, start=1):
            results.append(fetch(client, item) if isinstance(item, str) else analyze(item))
            if show_progress:
                progress(number, len(inputs), results[-1].filename)
    if args.json:
        print(json.dumps([facts.to_json() for facts in results], indent=2))
    else:
        print("\n\n".join(table(facts) for facts in results))
    return 1 if any(facts.broken for facts in results) else 0


def _env(args: argparse.Namespace) -> int:
    """``env``: this machine as the JSON ``/api/v1/resolve`` takes, to lock here or elsewhere."""
    import json

    from index_proxy.client.detect import detect_environment

    text = json.dumps(detect_environment(), indent=2) + "\n"
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        Path(args.output).write_text(text, encoding="utf-8")
    except OSError as error:
        print(f"index-proxy env: cannot write {args.output}: {error}", file=sys.stderr)
        return 2
    return 0


def _lock(args: argparse.Namespace) -> int:
    """``lock``: resolve a manifest on a server for a machine and write the lock files."""
    from index_proxy.client.lock import LockOptions, run_lock

    return run_lock(
        LockOptions(
            file=Path(args.file) if args.file else None,
            server=args.server,
            environment=Path(args.environment) if args.environment else None,
            formats=tuple(args.formats or ()),
            output=args.output,
            dev=args.dev,
            constraints=tuple(Path(c) for c in args.constraints or ()),
            scan=Path(args.scan) if args.scan else None,
            recommendation_type=args.recommendation_type,
            labels=tuple(args.labels or ()),
        )
    )


def _label(text: str) -> tuple[str, str]:
    key, equals, value = text.partition("=")
    if not equals or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _prescriptions_check(args: argparse.Namespace) -> int:
    """``prescriptions check PATH...``: schema problems and lint, one ``file:line: key: message`` a line.

    Exit status 0 when clean, 1 with problems, 2 for a path that does not exist or holds no rules.
    """
    import os

    from prescriptions import lint, load, sort_problems

    missing = [path for path in args.paths if not os.path.exists(path)]
    if missing:
        for path in missing:
            print(f"index-proxy prescriptions check: no such file or directory: {path}", file=sys.stderr)
        return 2
    result = load(args.paths)
    if not result.files:
        print(
            "index-proxy prescriptions check: no .yaml/.yml files under " + ", ".join(args.paths),
            file=sys.stderr,
        )
        return 2
    problems = sort_problems([*result.problems, *lint(result.units)])
    for problem in problems:
        print(problem)
    files = len(result.files)
    if problems:
        print(f"{len(problems)} problem(s) in {files} file(s)", file=sys.stderr)
        return 1
    print(f"{len(result.units)} unit(s) in {files} file(s): no problems", file=sys.stderr)
    return 0


def _advisories_import(args: argparse.Namespace) -> int:
    """``advisories import PATH``: OSV files into the store; every valid file is kept.

    Exit status 0 when every file was valid, 1 when some were not (the valid ones are imported all
    the same), 2 for a path that cannot be read or holds no OSV files.
    """
    import asyncio

    from index_proxy.advisory_files import UnreadableSource, read_advisory_files
    from index_proxy.store.advisories import AdvisoryStore, ImportStats
    from index_proxy.store.db import Database

    config = _load(args.config)
    try:
        found = read_advisory_files(Path(args.path))
    except UnreadableSource as error:
        print(f"index-proxy advisories import: {error}", file=sys.stderr)
        return 2
    if not found.files:
        print(f"index-proxy advisories import: no .json, .yaml or .yml files in {args.path}", file=sys.stderr)
        return 2

    async def run() -> tuple[ImportStats, int]:
        database = Database(config.storage.database)
        try:
            await database.migrate()
            store = AdvisoryStore(database)
            stats = await store.import_records(found.records)
            return stats, await store.count()
        finally:
            await database.close()

    stats, stored = asyncio.run(run())
    warnings = [problem for record in found.records for a in record.advisories for problem in a.problems]
    for problem in warnings:
        print(f"warning: {problem}", file=sys.stderr)
    for error in found.invalid:
        print(f"invalid: {error}", file=sys.stderr)
    print(
        f"{found.files} file(s): {stats.new} new, {stats.updated} updated, "
        f"{stats.unchanged} unchanged, {stats.not_pypi} not about PyPI packages, "
        f"{len(found.invalid)} invalid; {len(warnings)} version text(s) ignored; "
        f"{stored} advisories stored (one per record and package)"
    )
    return 1 if found.invalid else 0


def _advisories_show(args: argparse.Namespace) -> int:
    """``advisories show PROJECT [VERSION]``: the stored advisories of a project (affecting VERSION)."""
    import asyncio

    from packaging.version import InvalidVersion, Version

    from index_proxy.store.advisories import AdvisoryStore
    from index_proxy.store.db import Database
    from prescriptions.advisories import Advisory

    version: Version | None = None
    if args.version is not None:
        try:
            version = Version(args.version)
        except InvalidVersion:
            print(f"index-proxy advisories show: {args.version!r} is not a PEP 440 version", file=sys.stderr)
            return 2
    config = _load(args.config)

    async def run() -> list[Advisory]:
        database = Database(config.storage.database)
        try:
            await database.migrate()
            found = await AdvisoryStore(database).for_projects([args.project], include_withdrawn=True)
            return [advisory for advisories in found.values() for advisory in advisories]
        finally:
            await database.close()

    advisories = asyncio.run(run())
    if version is not None:
        advisories = [advisory for advisory in advisories if advisory.affects(version)]
    what = args.project if version is None else f"{args.project} {version}"
    if not advisories:
        print(f"{what}: no advisories" + (" affect it" if version is not None else " stored"))
        return 0
    print(f"{what}: {len(advisories)} advisor{'y' if len(advisories) == 1 else 'ies'}")
    for advisory in advisories:
        names = ", ".join(alias for alias in advisory.aliases) or "-"
        state = " (withdrawn)" if advisory.withdrawn is not None else ""
        print(f"{advisory.id}{state}  [{names}]  affected: {advisory.version_range}")
        print(f"    {advisory.title}")
        print(f"    {advisory.link}")
    return 0


def _add_advisories_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    advisories = commands.add_parser("advisories", help="security advisories (OSV records) in the store")
    actions = advisories.add_subparsers(dest="action", required=True)
    importing = actions.add_parser(
        "import",
        help="import OSV files (the PyPA advisory database's format); exit 1 if any file was invalid",
    )
    importing.add_argument("path", metavar="PATH", help="a folder tree, a .zip or a .tar.gz of OSV files")
    importing.add_argument("--config", help="YAML config file whose storage.database receives them")
    importing.set_defaults(handler=_advisories_import)
    show = actions.add_parser("show", help="list the stored advisories of a project")
    show.add_argument("project", metavar="PROJECT")
    show.add_argument("version", nargs="?", metavar="VERSION", help="only advisories affecting this version")
    show.add_argument("--config", help="YAML config file (the database to read)")
    show.set_defaults(handler=_advisories_show)


def _add_prescriptions_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    prescriptions = commands.add_parser("prescriptions", help="work with prescription (rule) files")
    actions = prescriptions.add_subparsers(dest="action", required=True)
    check = actions.add_parser(
        "check",
        help="validate and lint prescription files and trees; exit 1 on any problem (for CI)",
    )
    check.add_argument("paths", nargs="+", metavar="PATH", help="a prescription file or a directory tree")
    check.set_defaults(handler=_prescriptions_check)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="index-proxy", description="One safe simple index in front of many."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the merged simple index")
    serve.add_argument(
        "--config", help="YAML config file (default: proxy the index pip uses, state in ./var)"
    )
    serve.add_argument("--host", help="address to listen on (overrides server.host)")
    serve.add_argument("--port", type=int, help="port to listen on (overrides server.port)")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.add_argument(
        "--access-log", action="store_true", help="log every request (off: it costs throughput)"
    )
    serve.set_defaults(handler=_serve)
    worker = commands.add_parser("worker", help="analyse queued files (any number of these may run)")
    worker.add_argument("--config", help="YAML config file; must share the server's database and blob store")
    worker.add_argument("--concurrency", type=int, default=1, help="jobs analysed at once by this process")
    worker.add_argument(
        "--monitor",
        action="store_true",
        help="also poll the monitor: rules and watched Pulp repositories for new files",
    )
    worker.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    worker.set_defaults(handler=_worker)
    check = commands.add_parser("check-config", help="validate a config file and exit")
    check.add_argument("config", nargs="?")
    check.set_defaults(handler=_check_config)
    analyze = commands.add_parser(
        "analyze", help="analyse wheels/sdists (files, directories, http(s) URLs) and report facts"
    )
    analyze.add_argument("targets", nargs="+", metavar="PATH|URL", help="file, directory (recursive) or URL")
    analyze.add_argument("--json", action="store_true", help="print a JSON array of facts")
    analyze.set_defaults(handler=_analyze)
    env = commands.add_parser(
        "env", help="print this machine's environment (markers, tags, CPU, CUDA, glibc) as JSON"
    )
    env.add_argument("--output", metavar="FILE", help="write the JSON to FILE instead of stdout")
    env.set_defaults(handler=_env)
    lock = commands.add_parser(
        "lock", help="resolve a manifest on an index-proxy server for a machine and write lock files"
    )
    lock.add_argument(
        "file",
        nargs="?",
        metavar="FILE",
        help="requirements.in/.txt, Pipfile or pyproject.toml (default: the first of those here)",
    )
    lock.add_argument(
        "--server", help=f"the proxy's base URL (default: $INDEX_PROXY_URL, else {DEFAULT_SERVER})"
    )
    lock.add_argument(
        "--environment",
        metavar="FILE",
        help="lock for the machine `index-proxy env` described in FILE (default: this machine)",
    )
    lock.add_argument(
        "--format",
        dest="formats",
        action="append",
        choices=LOCK_FORMATS,
        help="a lock to write, repeatable (default: Pipfile.lock for a Pipfile, else requirements.txt)",
    )
    lock.add_argument(
        "--output",
        metavar="PATH",
        help="the lock file (one format), a directory (several), or - for stdout (default: next to FILE)",
    )
    lock.add_argument(
        "--dev",
        action="store_true",
        help="also lock [dev-packages] / [dependency-groups] dev into requirements.txt and pylock.toml "
        "(Pipfile.lock always has them, in develop)",
    )
    lock.add_argument(
        "--constraint",
        dest="constraints",
        action="append",
        metavar="FILE",
        help="a constraints file (requirement lines that limit versions without adding packages); repeatable",
    )
    lock.add_argument(
        "--scan",
        metavar="SRC_DIR",
        help="also send which libraries and names the code under SRC_DIR uses (read with ast, never run), "
        "for rules that apply to code using them",
    )
    lock.add_argument(
        "--recommendation-type",
        choices=("latest", "stable", "testing", "performance", "security"),
        help="how prescriptions and known advisories choose among valid resolutions (default: latest)",
    )
    lock.add_argument(
        "--label",
        dest="labels",
        action="append",
        type=_label,
        metavar="KEY=VALUE",
        help="a request label, for prescriptions gated on labels; repeatable",
    )
    lock.set_defaults(handler=_lock)
    _add_prescriptions_parser(commands)
    _add_advisories_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except ConfigError as error:
        print(f"index-proxy: invalid configuration:\n{error}", file=sys.stderr)
        return 2
    except BlobStoreUnavailable as error:
        print(f"index-proxy: the blob store cannot be used:\n{error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
