"""index-proxy in front of a real Pulp: pages merged with a test index, new uploads analysed.

One Pulp (installed into ``.pulp/venv`` once, migrated into a fresh database every session) serves
two repositories: ``internal``, announced by our pulpcore plugin, and ``polled``, which the plugin
leaves alone and index-proxy discovers through Pulp's REST API.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.clients import assert_ok, pip_install
from support.postgres import postgres_server
from support.proxy import RunningProxy, free_port, start_proxy
from support.pulp import ADMIN_PASSWORD, PulpServer, running_pulp
from support.upstream import UpstreamServer
from support.wheels import build_wheel

from index_proxy.config import IndexConfig
from index_proxy.store.pulp_cursors import PulpCursor
from index_proxy.upstreams.pulp import PulpApi, PulpChanges, RepositoryNotFound

pytestmark = pytest.mark.pulp

TOKEN = "pulp-hook-token"
_ANALYSIS_TIMEOUT = 90.0


@dataclass
class Stack:
    pulp: PulpServer
    public: UpstreamServer
    repositories: dict[str, str]
    config: str
    workdir: Path
    proxy: RunningProxy

    def restart_proxy(self) -> None:
        self.proxy.stop()
        self.proxy = start_proxy(self.workdir, self.config, token=TOKEN)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("pulp-stack")
    proxy_port = free_port()
    plugin_settings = {
        "INDEX_PROXY_URL": f"http://127.0.0.1:{proxy_port}/",
        "INDEX_PROXY_TOKEN": TOKEN,
        "INDEX_PROXY_INDEX": "internal",
        "INDEX_PROXY_REPOSITORIES": ["internal"],
        "INDEX_PROXY_RETRIES": 2,
    }
    dists = root / "dists"
    started = time.monotonic()
    with (
        postgres_server() as postgres,
        running_pulp(postgres, root / "pulp", plugin_settings=plugin_settings) as pulp,
        UpstreamServer(root / "public", style="json", range_support=False, metadata=False) as public,
    ):
        steps = ", ".join(f"{step} {seconds:.1f}s" for step, seconds in pulp.timings.items())
        print(f"\nPulp ready in {time.monotonic() - started:.1f}s ({steps})")
        repositories = {name: pulp.create_repository(name) for name in ("internal", "polled")}
        public.add(build_wheel(dists / "public", "plainlib", "1.0"))
        # The same name published on the test index: the owns guard must keep it out.
        public.add(build_wheel(dists / "public", "acme-widget", "9.9"))
        config = f"""\
server: {{host: 127.0.0.1, port: {proxy_port}, admin_token: {TOKEN}, monitor_interval: 1}}
indexes:
  - name: internal
    url: {pulp.simple_url("internal")}
    kind: pulp
    owns: ["acme-*"]
  - name: polled
    url: {pulp.simple_url("polled")}
    kind: pulp
    api_url: {pulp.api_url}
    repository: polled
    username: admin
    password: {ADMIN_PASSWORD}
  - name: public
    url: {public.url}
"""
        workdir = root / "proxy"
        stack = Stack(pulp, public, repositories, config, workdir, start_proxy(workdir, config, token=TOKEN))
        try:
            pulp.upload(
                repositories["internal"], build_wheel(dists, "acme-widget", "1.0", requires_dist=["plainlib"])
            )
            yield stack
        finally:
            stack.proxy.stop()
            print(f"--- proxy log (tail) ---\n{chr(10).join(stack.proxy.log().splitlines()[-60:])}")
            print(f"--- pulp worker log (tail) ---\n{chr(10).join(pulp.log('worker').splitlines()[-60:])}")


def _json_page(proxy: RunningProxy, project: str) -> dict[str, Any]:
    response = proxy.get(f"/simple/{project}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


def _analysed(proxy: RunningProxy, project: str, version: str) -> dict[str, Any]:
    """The analysis answer once every file of the version is analysed (fails after a timeout)."""
    deadline = time.monotonic() + _ANALYSIS_TIMEOUT
    last: Any = None
    while time.monotonic() < deadline:
        response = proxy.get(f"/api/v1/analysis/{project}/{version}")
        last = response.json()
        if response.status_code == 200 and all(f["state"] == "done" for f in last["files"]):
            return dict(last)
        time.sleep(0.3)
    raise AssertionError(f"{project} {version} not analysed in {_ANALYSIS_TIMEOUT:.0f}s: {last}")


def _job_reason(proxy: RunningProxy, file_url: str) -> str:
    file_id = file_url.split("/")[2]
    queue = proxy.get("/api/v1/admin/analysis/queue", headers=proxy.admin_headers()).json()
    reasons = [job["reason"] for job in queue["jobs"] if job["file_id"] == file_id]
    assert len(reasons) == 1, queue
    return str(reasons[0])


def test_pulp_pages_merged_with_the_owns_guard(stack: Stack, tmp_path: Path) -> None:
    proxy = stack.proxy
    widget = _json_page(proxy, "acme-widget")
    assert [f["filename"] for f in widget["files"]] == ["acme_widget-1.0-py3-none-any.whl"]
    assert all(f["hashes"].get("sha256") for f in widget["files"])
    dropped = [e for e in proxy.guard_events() if e["project"] == "acme-widget"]
    assert [(e["filename"], e["index"]) for e in dropped] == [("acme_widget-9.9-py3-none-any.whl", "public")]
    assert [f["filename"] for f in _json_page(proxy, "plainlib")["files"]] == [
        "plainlib-1.0-py3-none-any.whl"
    ]

    target = tmp_path / "target"
    assert_ok(pip_install(proxy.simple_url, ["acme-widget"], target))
    installed = sorted(p.name for p in target.glob("*.dist-info"))
    assert installed == ["acme_widget-1.0.dist-info", "plainlib-1.0.dist-info"]


def test_upload_announced_by_the_plugin_is_analysed(stack: Stack, tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, "acme-hooked", "1.0")
    stack.pulp.upload(stack.repositories["internal"], wheel)
    # Nobody asked the proxy for this project: only the plugin's notification can make it known.
    analysis = _analysed(stack.proxy, "acme-hooked", "1.0")
    [entry] = analysis["files"]
    assert entry["filename"] == wheel.name
    assert entry["index"] == "internal"
    assert entry["facts"]["filename"] == wheel.name
    assert _job_reason(stack.proxy, entry["url"]) == "hook"
    assert "index-proxy notified" in stack.pulp.log("worker")


def test_upload_found_by_polling_pulp_is_analysed(stack: Stack, tmp_path: Path) -> None:
    # Not an acme-* name: those are owned by the internal index, and the guard would drop this one.
    wheel = build_wheel(tmp_path, "polledlib", "2.0")
    stack.pulp.upload(stack.repositories["polled"], wheel)
    analysis = _analysed(stack.proxy, "polledlib", "2.0")
    [entry] = analysis["files"]
    assert (entry["filename"], entry["index"]) == (wheel.name, "polled")
    assert _job_reason(stack.proxy, entry["url"]) == "pulp"
    # pip gets it through the proxy too.
    target = tmp_path / "target"
    assert_ok(pip_install(stack.proxy.simple_url, ["polledlib"], target))
    assert (target / "polledlib-2.0.dist-info").is_dir()


async def test_pulp_api_reads_what_came_after_the_cursor(stack: Stack, tmp_path: Path) -> None:
    def api(repository: str) -> PulpApi:
        index = IndexConfig(
            name="p",
            url=stack.pulp.simple_url(repository),
            kind="pulp",
            username="admin",
            password=ADMIN_PASSWORD,
            api_url=stack.pulp.api_url,
            repository=repository,
        )
        return PulpApi(index, client)

    async with httpx.AsyncClient(trust_env=False) as client:
        missing = await api("no-such-repository").changes(None)
        assert isinstance(missing, RepositoryNotFound)
        assert "no Python repository named 'no-such-repository'" in missing.reason
        first = await api("polled").changes(None)
        assert isinstance(first, PulpChanges)
        assert await api("polled").changes(first.cursor) == PulpChanges(first.cursor, ())

        wheel = build_wheel(tmp_path, "cursorlib", "1.0")
        stack.pulp.upload(stack.repositories["polled"], wheel)
        later = await api("polled").changes(first.cursor)
        assert isinstance(later, PulpChanges)
        assert [(p.project, p.filename) for p in later.packages] == [("cursorlib", wheel.name)]
        assert later.cursor == PulpCursor(first.cursor.repository_href, first.cursor.version + 1)
        # A cursor of another repository (one deleted and made again) reads the latest version whole.
        fresh = await api("polled").changes(PulpCursor("/pulp/api/v3/repositories/python/python/gone/", 9))
        assert isinstance(fresh, PulpChanges)
        assert wheel.name in {p.filename for p in fresh.packages}
        assert fresh.cursor == later.cursor


def test_upload_completes_while_index_proxy_is_down(stack: Stack, tmp_path: Path) -> None:
    gave_up = "index-proxy not reached after 3 attempt(s)"
    before = stack.pulp.log("worker").count(gave_up)
    stack.proxy.stop()
    try:
        task = stack.pulp.upload(stack.repositories["internal"], build_wheel(tmp_path, "acme-offline", "1.0"))
        assert task["state"] == "completed"
        deadline = time.monotonic() + 60
        while stack.pulp.log("worker").count(gave_up) == before:
            assert time.monotonic() < deadline, stack.pulp.log("worker")[-3000:]
            time.sleep(0.3)
    finally:
        stack.restart_proxy()
    # The file is still served: the page comes from Pulp's index, not from the notification.
    page = _json_page(stack.proxy, "acme-offline")
    assert [f["filename"] for f in page["files"]] == ["acme_offline-1.0-py3-none-any.whl"]
