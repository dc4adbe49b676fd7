"""A real Pulp (pulpcore + pulp-python + our plugin) on loopback, for the ``pulp``-marked tests.

Pulp lives in its own virtualenv under ``.pulp/`` in the repository (gitignored, kept between runs):
it pins Django, cryptography and more, and registers pytest plugins, so it must stay out of the
test venv. Its database is a fresh one on the tests' PostgreSQL; its API, content app and one task
worker run as separate process groups and are stopped by PID, also when a test fails.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

from index_proxy.upstreams.pip_index import pip_index_url
from support.clients import uv_bin
from support.postgres import PostgresServer
from support.proxy import REPO_ROOT, free_port

__all__ = ["PULP_PINS", "PulpServer", "ensure_pulp_venv", "running_pulp"]

PULP_PINS = ("pulpcore==3.123.1", "pulp-python==3.36.4")
PULP_HOME = REPO_ROOT / ".pulp"
ADMIN_PASSWORD = "password"
_READY_TIMEOUT = 180.0
_TASK_TIMEOUT = 120.0
_LOOPBACK = "127.0.0.1,localhost,::1"


class PulpError(RuntimeError):
    pass


def _log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"<no log: {exc}>"


def _run(command: list[str], *, env: Mapping[str, str], log: Path, timeout: float) -> None:
    with log.open("ab") as out:
        out.write(f"$ {' '.join(command)}\n".encode())
        out.flush()
        result = subprocess.run(
            command,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=timeout,
        )
    if result.returncode != 0:
        raise PulpError(f"{' '.join(command)} exited with {result.returncode}; log tail:\n{_log_tail(log)}")


def ensure_pulp_venv(home: Path = PULP_HOME) -> Path:
    """Pulp's venv with the pinned releases (installed once, then reused) and our plugin (always fresh)."""
    venv = home / "venv"
    python = venv / "bin" / "python"
    marker = venv / ".pins"
    home.mkdir(parents=True, exist_ok=True)
    log = home / "install.log"
    # uv does not read pip's configuration: point it at the index pip is configured with.
    env = {
        **os.environ,
        "UV_NO_PROGRESS": "1",
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_DEFAULT_INDEX": pip_index_url(),
    }
    uv = str(uv_bin())
    wanted = "\n".join(PULP_PINS)
    if not (python.exists() and marker.exists() and marker.read_text() == wanted):
        _run([uv, "venv", "--clear", "--python", sys.executable, str(venv)], env=env, log=log, timeout=300)
        _run([uv, "pip", "install", "--python", str(python), *PULP_PINS], env=env, log=log, timeout=900)
        marker.write_text(wanted)
    # The plugin is small and changes with the work tree: reinstall it every session.
    _run(
        [
            uv,
            "pip",
            "install",
            "--python",
            str(python),
            "--no-deps",
            "--reinstall-package",
            "pulp-index-proxy",
            str(REPO_ROOT / "pulp_plugin"),
        ],
        env=env,
        log=log,
        timeout=300,
    )
    return venv


_SETTINGS = """\
SECRET_KEY = {secret!r}
DATABASES = {{"default": {{"ENGINE": "django.db.backends.postgresql", "NAME": {database!r}, "USER": {user!r},
    "HOST": {host!r}, "PORT": {port}, "CONN_MAX_AGE": 0}}}}
DB_ENCRYPTION_KEY = {key_file!r}
DEPLOY_ROOT = {root!r}
MEDIA_ROOT = {root!r} + "/media"
STATIC_ROOT = {root!r} + "/assets"
WORKING_DIRECTORY = {root!r} + "/tmp"
FILE_UPLOAD_TEMP_DIR = {root!r} + "/tmp"
CONTENT_ORIGIN = {content_origin!r}
PYPI_API_HOSTNAME = {api_origin!r}
ALLOWED_CONTENT_CHECKSUMS = ["sha224", "sha256", "sha384", "sha512"]
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
CACHE_ENABLED = False
WORKER_TYPE = "pulpcore"
# Telemetry: Pulp posts usage data to its project's analytics site unless this is off.
ANALYTICS = False
OTEL_ENABLED = False
"""


@dataclass
class PulpServer:
    api_origin: str
    content_origin: str
    settings: Path
    venv: Path
    workdir: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds per bring-up step: install, migrate, start (with the admin password)."""
    _logs: list[IO[bytes]] = field(default_factory=list, repr=False)

    @property
    def api_url(self) -> str:
        return f"{self.api_origin}/pulp/api/v3/"

    def simple_url(self, base_path: str) -> str:
        return f"{self.api_origin}/pypi/{base_path}/simple/"

    def log(self, service: str) -> str:
        return (self.workdir / f"{service}.log").read_text(errors="replace")

    # -- REST --------------------------------------------------------------------------------------
    def _client(self) -> httpx.Client:
        return httpx.Client(auth=("admin", ADMIN_PASSWORD), trust_env=False, timeout=60.0)

    def request(self, method: str, path: str, **kw: Any) -> Any:
        url = path if path.startswith("http") else self.api_origin + path
        with self._client() as client:
            response = client.request(method, url, **kw)
        if response.status_code >= 400:
            raise PulpError(f"{method} {url}: HTTP {response.status_code}: {response.text[:2000]}")
        return response.json() if response.content else None

    def wait_task(self, task_href: str) -> dict[str, Any]:
        deadline = time.monotonic() + _TASK_TIMEOUT
        while time.monotonic() < deadline:
            task = self.request("GET", task_href)
            if task["state"] == "completed":
                return dict(task)
            if task["state"] in ("failed", "canceled"):
                raise PulpError(f"task {task_href} {task['state']}: {json.dumps(task.get('error'))}")
            time.sleep(0.1)
        raise PulpError(
            f"task {task_href} not done within {_TASK_TIMEOUT:.0f}s; worker log:\n"
            f"{_log_tail(self.workdir / 'worker.log')}"
        )

    def create_repository(self, name: str) -> str:
        """A Python repository and a distribution serving its latest version at base path ``name``."""
        repository = self.request("POST", "/pulp/api/v3/repositories/python/python/", json={"name": name})
        task = self.request(
            "POST",
            "/pulp/api/v3/distributions/python/pypi/",
            json={"name": name, "base_path": name, "repository": repository["pulp_href"]},
        )
        self.wait_task(task["task"])
        return str(repository["pulp_href"])

    def upload(self, repository_href: str, wheel: Path) -> dict[str, Any]:
        """Add ``wheel`` to the repository (a new repository version); returns the finished task."""
        with wheel.open("rb") as data:
            task = self.request(
                "POST",
                "/pulp/api/v3/content/python/packages/",
                data={"relative_path": wheel.name, "repository": repository_href},
                files={"file": (wheel.name, data, "application/octet-stream")},
            )
        return self.wait_task(task["task"])

    # -- processes ---------------------------------------------------------------------------------
    def start(self, name: str, command: list[str], env: Mapping[str, str]) -> None:
        log = (self.workdir / f"{name}.log").open("ab")
        self._logs.append(log)
        # Own session: gunicorn forks workers; stopping the group by the leader's PID stops them all.
        self.processes[name] = subprocess.Popen(
            command,
            env=dict(env),
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + _READY_TIMEOUT
        last = "no answer yet"
        with httpx.Client(trust_env=False, timeout=5.0) as client:
            while time.monotonic() < deadline:
                for name, process in self.processes.items():
                    if process.poll() is not None:
                        raise PulpError(
                            f"pulp {name} exited with {process.returncode}; log tail:\n"
                            f"{_log_tail(self.workdir / f'{name}.log')}"
                        )
                try:
                    status = client.get(f"{self.api_url}status/").json()
                except (httpx.HTTPError, ValueError) as exc:
                    last = f"{type(exc).__name__}: {exc}"
                else:
                    if all(
                        status.get(k) for k in ("online_workers", "online_api_apps", "online_content_apps")
                    ):
                        return
                    last = "not all of api, content and worker online"
                time.sleep(0.3)
        raise PulpError(f"Pulp not ready within {_READY_TIMEOUT:.0f}s ({last})")

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        for log in self._logs:
            log.close()
        self._logs.clear()


@contextmanager
def running_pulp(
    postgres: PostgresServer, workdir: Path, *, plugin_settings: Mapping[str, Any]
) -> Iterator[PulpServer]:
    """Install (once), migrate a fresh database, start api + content + worker; stop and drop at exit.

    ``plugin_settings`` (INDEX_PROXY_URL, ...) are appended to Pulp's settings file.
    """
    clock = time.monotonic()
    venv = ensure_pulp_venv()
    installed = time.monotonic() - clock
    workdir.mkdir(parents=True, exist_ok=True)
    for sub in ("media", "assets", "tmp"):
        (workdir / sub).mkdir(exist_ok=True)
    api_port, content_port = free_port(), free_port()
    key_file = workdir / "database_fields.symmetric.key"
    bin_dir = venv / "bin"
    subprocess.run(
        [
            str(bin_dir / "python"),
            "-c",
            "import sys; from cryptography.fernet import Fernet;"
            " open(sys.argv[1], 'wb').write(Fernet.generate_key())",
            str(key_file),
        ],
        check=True,
    )
    database = f"pulp_test_{uuid.uuid4().hex[:12]}"
    settings = workdir / "settings.py"
    text = _SETTINGS.format(
        secret=uuid.uuid4().hex * 2,
        database=database,
        user=postgres.user,
        host=postgres.host,
        port=postgres.port,
        key_file=str(key_file),
        root=str(workdir),
        content_origin=f"http://127.0.0.1:{content_port}",
        api_origin=f"http://127.0.0.1:{api_port}",
    )
    text += "".join(f"{name} = {value!r}\n" for name, value in plugin_settings.items())
    settings.write_text(text)
    env = {
        **os.environ,
        "PULP_SETTINGS": str(settings),
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "NO_PROXY": _LOOPBACK,
        "no_proxy": _LOOPBACK,
        "XDG_RUNTIME_DIR": str(workdir),
    }
    server = PulpServer(
        api_origin=f"http://127.0.0.1:{api_port}",
        content_origin=f"http://127.0.0.1:{content_port}",
        settings=settings,
        venv=venv,
        workdir=workdir,
    )
    server.timings["install"] = installed
    postgres.create_database(database)
    try:
        setup_log = workdir / "setup.log"
        clock = time.monotonic()
        _run([str(bin_dir / "pulpcore-manager"), "migrate", "--noinput"], env=env, log=setup_log, timeout=600)
        server.timings["migrate"] = time.monotonic() - clock
        clock = time.monotonic()
        gunicorn = ["--workers", "1", "--no-control-socket"]
        server.start(
            "api", [str(bin_dir / "pulpcore-api"), "--bind", f"127.0.0.1:{api_port}", *gunicorn], env
        )
        server.start(
            "content",
            [str(bin_dir / "pulpcore-content"), "--bind", f"127.0.0.1:{content_port}", *gunicorn],
            env,
        )
        server.start("worker", [str(bin_dir / "pulpcore-worker")], env)
        # While the services boot (mostly imports): the admin password, needed only by the tests' writes.
        _run(
            [str(bin_dir / "pulpcore-manager"), "reset-admin-password", "--password", ADMIN_PASSWORD],
            env=env,
            log=setup_log,
            timeout=300,
        )
        server.wait_ready()
        server.timings["start"] = time.monotonic() - clock
        yield server
    finally:
        server.stop()
        postgres.drop_database(database)
