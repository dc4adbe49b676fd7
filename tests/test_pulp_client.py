"""The Pulp REST client and the plugin's notifier against what they meet when Pulp or the proxy is not there.

The happy paths run against a real Pulp in ``test_pulp.py``; these need no Pulp.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from support.proxy import REPO_ROOT, free_port
from support.upstream import UpstreamServer

from index_proxy.analysis import Monitor, monitor_needed
from index_proxy.config import parse_config
from index_proxy.services import open_services
from index_proxy.store.pulp_cursors import PulpCursor, PulpCursorStore
from index_proxy.upstreams.pulp import PulpApi, PulpUnavailable


def _pulp_config(tmp_path: Path, api_url: str) -> str:
    return f"""\
indexes:
  - name: internal
    url: http://127.0.0.1:{free_port()}/pypi/internal/simple/
    kind: pulp
    api_url: {api_url}
    repository: internal
    retries: 1
    timeout: 2
storage: {{database: "sqlite:///{tmp_path / "proxy.db"}", blobs: "{tmp_path / "blobs"}"}}
"""


async def test_dead_pulp_is_unavailable_with_its_address() -> None:
    api_url = f"http://127.0.0.1:{free_port()}/pulp/api/v3/"
    index = parse_config(_pulp_config(Path("/unused"), api_url)).indexes[0]
    async with httpx.AsyncClient(trust_env=False) as client:
        outcome = await PulpApi(index, client).changes(None)
    assert isinstance(outcome, PulpUnavailable)
    assert f"Pulp at {api_url} does not answer" in outcome.reason
    assert "cannot connect" in outcome.reason


async def test_not_pulp_is_reported_as_a_wrong_api_url(tmp_path: Path) -> None:
    with UpstreamServer(tmp_path / "index", style="json", range_support=False, metadata=False) as server:
        index = parse_config(_pulp_config(tmp_path, server.base_url + "/api/")).indexes[0]
        async with httpx.AsyncClient(trust_env=False) as client:
            outcome = await PulpApi(index, client).changes(None)
    assert isinstance(outcome, PulpUnavailable)
    assert "HTTP 404; api_url must be Pulp's REST API root" in outcome.reason


async def test_monitor_keeps_the_cursor_while_pulp_is_down(tmp_path: Path) -> None:
    config = parse_config(_pulp_config(tmp_path, f"http://127.0.0.1:{free_port()}/pulp/api/v3/"))
    assert monitor_needed(config)
    async with open_services(config) as services:
        cursors = PulpCursorStore(services.database)
        await cursors.put("internal", PulpCursor("/pulp/api/v3/repositories/python/python/x/", 7))
        assert await Monitor(services).poll_once() == 0
        assert await cursors.get("internal") == PulpCursor("/pulp/api/v3/repositories/python/python/x/", 7)


# -- the plugin's notifier (standard library only, so it loads without pulpcore) --------------------


@functools.cache
def _notifier() -> ModuleType:
    path = REPO_ROOT / "pulp_plugin" / "pulp_index_proxy" / "app" / "notify.py"
    spec = importlib.util.spec_from_file_location("pulp_index_proxy_notify", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Dataclasses look their module up in sys.modules while the class is being made.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


class _Hook(ThreadingHTTPServer):
    status = 202
    bodies: list[tuple[str | None, dict[str, object]]]


class _HookHandler(BaseHTTPRequestHandler):
    server: _Hook

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.bodies.append((self.headers.get("Authorization"), body))
        self.send_response(self.server.status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[_Hook]:
    server = _Hook(("127.0.0.1", 0), _HookHandler)
    server.bodies = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_notifier_posts_the_files_with_the_token(hook: _Hook) -> None:
    notify = _notifier()
    url = notify.hook_url(f"http://127.0.0.1:{hook.server_address[1]}/")
    assert url == f"http://127.0.0.1:{hook.server_address[1]}/api/v1/hooks/new-files"
    notification = notify.Notification(url, "tok", "internal", [("acme", "acme-1.0-py3-none-any.whl")])
    assert notify.deliver(notification, timeout=5, retries=2, sleep=lambda _: None)
    assert hook.bodies == [
        (
            "Bearer tok",
            {"index": "internal", "files": [{"project": "acme", "filename": "acme-1.0-py3-none-any.whl"}]},
        )
    ]


def test_notifier_retries_a_dead_proxy_a_bounded_number_of_times() -> None:
    notify = _notifier()
    pauses: list[float] = []
    notification = notify.Notification(
        notify.hook_url(f"http://127.0.0.1:{free_port()}"), None, "i", [("a", "a.whl")]
    )
    assert not notify.deliver(notification, timeout=2, retries=3, sleep=pauses.append)
    assert pauses == [0.5, 1.0, 2.0]


def test_notifier_does_not_retry_a_refusal(hook: _Hook) -> None:
    notify = _notifier()
    hook.status = 401
    pauses: list[float] = []
    url = notify.hook_url(f"http://127.0.0.1:{hook.server_address[1]}")
    assert not notify.deliver(
        notify.Notification(url, "wrong", "i", [("a", "a.whl")]), timeout=5, retries=3, sleep=pauses.append
    )
    assert (len(hook.bodies), pauses) == (1, [])
