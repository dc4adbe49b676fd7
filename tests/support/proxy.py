"""A real index-proxy process (``python -m index_proxy serve``) on a loopback port."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import yaml

__all__ = ["REPO_ROOT", "ProxyStartError", "RunningProxy", "free_port", "start_proxy"]

REPO_ROOT = Path(__file__).resolve().parents[2]
_STARTUP_TIMEOUT = 30.0
_STOP_TIMEOUT = 10.0


class ProxyStartError(RuntimeError):
    pass


def free_port() -> int:
    """A loopback port nobody listens on right now (the proxy binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _log_tail(path: Path, lines: int = 60) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<no log: {exc}>"
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class RunningProxy:
    url: str
    simple_url: str
    token: str
    process: subprocess.Popen[bytes]
    log_path: Path
    config_path: Path
    workdir: Path
    _log_file: IO[bytes] | None = field(default=None, repr=False)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=_STOP_TIMEOUT)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def error_lines(self) -> list[str]:
        """Log lines at error level or above (JSON log lines) and traceback lines (plain ones).

        Real clients retry 5xx answers, so a proxy that fails a request and then succeeds on the
        retry still gets the package installed; tests check this list to catch such failures.
        """
        found: list[str] = []
        for line in self.log().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if isinstance(record, dict):
                if str(record.get("level", "")).lower() in {"error", "critical", "fatal"}:
                    found.append(line)
            elif "Traceback (most recent call last)" in line:
                found.append(line)
        return found

    def get(self, path: str, **kw: Any) -> httpx.Response:
        """GET ``path`` (relative to the proxy's base URL, or absolute) with no environment proxies."""
        url = path if path.startswith(("http://", "https://")) else self.url + path
        kw.setdefault("timeout", 30.0)
        # trust_env=False: an HTTP(S)_PROXY on the machine must not reroute loopback test traffic.
        with httpx.Client(trust_env=False) as client:
            return client.get(url, **kw)

    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def guard_events(self) -> list[dict[str, Any]]:
        response = self.get("/api/v1/admin/guard-events", headers=self.admin_headers())
        response.raise_for_status()
        events = response.json()["events"]
        assert isinstance(events, list)
        return events


def _server_section(config: dict[str, Any]) -> dict[str, Any] | None:
    server = config.get("server")
    return server if isinstance(server, dict) else None


def start_proxy(
    tmp_path: Path, config_yaml: str, *, token: str = "test-token", database: str | None = None
) -> RunningProxy:
    """Write the config, start the proxy and wait until ``/healthz`` answers 200.

    ``server:`` and ``storage:`` sections are appended only when the caller's YAML has none, so a
    test that cares about them (another host, a PostgreSQL URL) writes its own. An appended
    ``storage:`` uses *database*, or a SQLite file in the proxy's own folder when it is ``None``.
    """
    tmp_path.mkdir(parents=True, exist_ok=True)
    # One directory per proxy: a test may run several proxies (or restart one) under one tmp_path.
    workdir = Path(tempfile.mkdtemp(prefix="proxy-", dir=tmp_path))
    parsed = yaml.safe_load(config_yaml) or {}
    if not isinstance(parsed, dict):
        raise ValueError("proxy config must be a YAML mapping")

    text = config_yaml.rstrip("\n") + "\n"
    server = _server_section(parsed)
    if server is None:
        port = free_port()
        server = {"host": "127.0.0.1", "port": port, "admin_token": token}
        text += yaml.safe_dump({"server": server}, sort_keys=False)
    if "storage" not in parsed:
        storage = {
            "database": database or f"sqlite:///{workdir / 'proxy.db'}",
            "blobs": str(workdir / "blobs"),
        }
        text += yaml.safe_dump({"storage": storage}, sort_keys=False)

    host = str(server.get("host", "127.0.0.1"))
    port = int(server.get("port", 8000))
    admin_token = server.get("admin_token")
    effective_token = str(admin_token) if admin_token is not None else token

    config_path = workdir / "config.yaml"
    config_path.write_text(text)
    log_path = workdir / "proxy.log"
    log_file = log_path.open("wb")

    env = dict(os.environ)
    # The app is run from the work tree, installed or not.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    # Upstreams are on loopback: an environment proxy must never sit between them and the app.
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost,::1"
    process = subprocess.Popen(
        [sys.executable, "-m", "index_proxy", "serve", "--config", str(config_path)],
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    url = f"http://{host}:{port}"
    proxy = RunningProxy(
        url=url,
        simple_url=f"{url}/simple/",
        token=effective_token,
        process=process,
        log_path=log_path,
        config_path=config_path,
        workdir=workdir,
        _log_file=log_file,
    )
    try:
        _wait_healthy(proxy)
    except BaseException:
        proxy.stop()
        raise
    return proxy


def _wait_healthy(proxy: RunningProxy) -> None:
    deadline = time.monotonic() + _STARTUP_TIMEOUT
    last_error = "no attempt"
    with httpx.Client(trust_env=False, timeout=2.0) as client:
        while time.monotonic() < deadline:
            code = proxy.process.poll()
            if code is not None:
                raise ProxyStartError(
                    f"proxy exited with code {code} before /healthz answered; log tail:\n"
                    f"{_log_tail(proxy.log_path)}"
                )
            try:
                response = client.get(proxy.url + "/healthz")
            except httpx.TransportError as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code == 200:
                    return
                last_error = f"/healthz answered {response.status_code}"
            time.sleep(0.1)
    raise ProxyStartError(
        f"proxy not healthy within {_STARTUP_TIMEOUT:.0f}s ({last_error}); log tail:\n"
        f"{_log_tail(proxy.log_path)}"
    )
