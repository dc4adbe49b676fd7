"""The ``index-proxy`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from index_proxy.config import Config, ConfigError, default_config, load_config

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
    worker.add_argument("--monitor", action="store_true", help="also poll the monitor: rules for new files")
    worker.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    worker.set_defaults(handler=_worker)
    check = commands.add_parser("check-config", help="validate a config file and exit")
    check.add_argument("config", nargs="?")
    check.set_defaults(handler=_check_config)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except ConfigError as error:
        print(f"index-proxy: invalid configuration:\n{error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
