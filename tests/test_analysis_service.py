"""Analysis at run time: the leased job queue, workers (in-process and separate), the monitor, the API.

Workers here are real ``index-proxy worker`` processes sharing one real PostgreSQL and one blob
folder with the proxy; a worker is killed with SIGKILL in the middle of a job.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.postgres import PostgresServer
from support.proxy import RunningProxy, free_port
from support.wheels import build_wheel

GLIBC_234_C = """
#include <pthread.h>
static void *run(void *arg) { return arg; }
int start(void) { pthread_t t; return pthread_create(&t, 0, run, 0); }
"""


@pytest.fixture
def database(postgres: PostgresServer) -> Iterator[str]:
    name = postgres.create_database()
    try:
        yield postgres.dsn(name)
    finally:
        postgres.drop_database(name)


def wait_for(condition: Callable[[], Any], timeout: float = 60, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def config_text(tmp_path: Path, database: str, indexes: list[dict[str, Any]], **server: Any) -> str:
    monitor = server.pop("monitor", None)
    document: dict[str, Any] = {
        "server": {"host": "127.0.0.1", "port": free_port(), "admin_token": "test-token", **server},
        "storage": {"database": database, "blobs": str(tmp_path / "blobs")},
        "indexes": indexes,
    }
    if monitor is not None:
        document["monitor"] = monitor
    return yaml.safe_dump(document, sort_keys=False)


class Worker:
    """An ``index-proxy worker`` process with its own log."""

    def __init__(self, tmp_path: Path, config: str, name: str) -> None:
        self.config_path = tmp_path / f"{name}.yaml"
        self.config_path.write_text(config)
        self.log_path = tmp_path / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "index_proxy", "worker", "--config", str(self.config_path)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def done_jobs(self) -> list[int]:
        jobs = []
        for line in self.log_path.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("msg") == "analysis done":
                jobs.append(record["job"])
        return jobs

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=20)
        self._log.close()


def queue(proxy: RunningProxy) -> dict[str, Any]:
    response = proxy.get("/api/v1/admin/analysis/queue", headers=proxy.admin_headers())
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


def announce(proxy: RunningProxy, body: dict[str, Any]) -> dict[str, Any]:
    import httpx

    with httpx.Client(trust_env=False) as client:
        response = client.post(
            proxy.url + "/api/v1/hooks/new-files", json=body, headers=proxy.admin_headers()
        )
    assert response.status_code == 202, response.text
    return response.json()  # type: ignore[no-any-return]


def analysis(proxy: RunningProxy, project: str, version: str) -> dict[str, Any]:
    return proxy.get(f"/api/v1/analysis/{project}/{version}").json()  # type: ignore[no-any-return]


def test_two_workers_do_each_job_once(
    tmp_path: Path, database: str, folder_index: Any, wheel_dir: Path, proxy: Any
) -> None:
    local = folder_index("local")
    count = 12
    for number in range(count):
        local.add(build_wheel(wheel_dir, f"pkg{number}", "1.0"))
    indexes = [{"name": "local", "kind": "folder", "url": local.url}]
    running: RunningProxy = proxy(config_text(tmp_path, database, indexes, analysis_workers=0))
    for number in range(count):
        assert announce(running, {"index": "local", "projects": [f"pkg{number}"]})["queued"] == 1
    assert announce(running, {"index": "local", "projects": ["pkg0"]})["queued"] == 0  # known already
    worker_config = config_text(tmp_path, database, indexes)
    workers = [Worker(tmp_path, worker_config, f"worker{i}") for i in range(2)]
    try:
        wait_for(lambda: queue(running)["counts"].get("done") == count, what="all jobs done")
    finally:
        for worker in workers:
            worker.stop()
    done = workers[0].done_jobs() + workers[1].done_jobs()
    assert sorted(done) == sorted(set(done)) and len(done) == count, f"a job was done twice or lost: {done}"
    facts = analysis(running, "pkg3", "1.0")["files"][0]
    assert facts["state"] == "done"
    assert facts["facts"]["metadata"]["name"] == "pkg3"


def test_killed_worker_job_is_redone(
    tmp_path: Path, database: str, upstreams: Any, wheel_dir: Path, proxy: Any
) -> None:
    public = upstreams(style="json", name="public")
    wheel = build_wheel(wheel_dir, "slowpkg", "1.0")
    public.add(wheel)
    indexes = [{"name": "public", "url": public.url, "retries": 0, "timeout": 60}]
    running: RunningProxy = proxy(
        config_text(tmp_path, database, indexes, analysis_workers=0, analysis_lease=2)
    )
    assert announce(running, {"index": "public", "files": [{"filename": wheel.name}]})["queued"] == 1
    public.set_delay(30)  # the first worker's download hangs: it is mid-job when it dies
    first = Worker(tmp_path, config_text(tmp_path, database, indexes, analysis_lease=2), "doomed")
    try:
        leased = wait_for(
            lambda: [j for j in queue(running)["jobs"] if j["state"] == "leased"], what="the job to be leased"
        )
        wait_for(lambda: public.count("GET", f"/files/{wheel.name}") >= 1, what="the download to start")
    finally:
        first.stop(signal.SIGKILL)
    assert leased[0]["attempts"] == 1
    public.set_delay(0)
    second = Worker(tmp_path, config_text(tmp_path, database, indexes, analysis_lease=2), "rescuer")
    try:
        wait_for(lambda: queue(running)["counts"].get("done") == 1, what="the job to be redone")
    finally:
        second.stop()
    job = queue(running)["jobs"][0]
    assert job["attempts"] == 2 and job["state"] == "done"
    assert first.done_jobs() == [] and second.done_jobs() == [job["id"]]
    assert analysis(running, "slowpkg", "1.0")["files"][0]["facts"]["sha256"] == job_sha(wheel)


def job_sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_monitor_analyses_new_files_without_a_client(
    tmp_path: Path, database: str, upstreams: Any, wheel_dir: Path, proxy: Any
) -> None:
    public = upstreams(style="json", name="public")
    public.add(build_wheel(wheel_dir, "watched", "1.0"))
    public.add(build_wheel(wheel_dir, "watched", "2.0"))
    public.add(build_wheel(wheel_dir, "ignored", "1.0"))
    running: RunningProxy = proxy(
        config_text(
            tmp_path,
            database,
            [{"name": "public", "url": public.url}],
            monitor_interval=0.5,
            monitor=[{"index": "public", "projects": ["watch*"], "versions": ">=2"}],
        )
    )
    wait_for(
        lambda: analysis(running, "watched", "2.0").get("files", [{}])[0].get("state") == "done",
        what="2.0 analysed",
    )
    assert analysis(running, "watched", "1.0").get("files") is None  # outside the version range: not queued
    assert running.get("/api/v1/analysis/ignored/1.0").status_code == 404
    public.add(build_wheel(wheel_dir, "watched", "3.0", requires_dist=["ignored>=1"]))
    third = wait_for(
        lambda: (
            (a := analysis(running, "watched", "3.0")).get("files") and a["files"][0]["state"] == "done" and a
        ),
        what="3.0 analysed",
    )
    assert third["files"][0]["facts"]["metadata"]["requires_dist"] == ["ignored>=1"]
    # Nobody asked for the page or the file: the monitor found it, with conditional requests.
    assert (
        running.get("/metrics").text.count('index_proxy_page_responses_total{format="json",status="200"}')
        == 0
    )
    assert any(r.header("If-None-Match") for r in public.requests if r.path == "/simple/watched/")


def test_first_download_is_analysed_and_problems_are_listed(
    tmp_path: Path, database: str, upstreams: Any, wheel_dir: Path, proxy: Any
) -> None:
    public = upstreams(style="html", name="public")
    mistagged = build_wheel(
        wheel_dir,
        "newglibc",
        "1.0",
        tag="cp311-cp311-manylinux2014_x86_64",
        extension_c=GLIBC_234_C,
        extension_flags=["-lpthread"],
    )
    public.add(mistagged)
    running: RunningProxy = proxy(config_text(tmp_path, database, [{"name": "public", "url": public.url}]))
    page = running.get("/simple/newglibc/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}).json()
    url = "/" + page["files"][0]["url"].removeprefix("../../")
    assert running.get(url).status_code == 200
    wait_for(lambda: analysis(running, "newglibc", "1.0")["files"][0]["state"] == "done", what="analysis")
    facts = analysis(running, "newglibc", "1.0")["files"][0]["facts"]
    assert facts["abi"]["mis_tagged"] is True
    problems = running.get(
        "/api/v1/admin/analysis/problems?index=public", headers=running.admin_headers()
    ).json()
    assert [(p["filename"], p["mis_tagged"]) for p in problems["files"]] == [(mistagged.name, True)]
    assert any(f["code"] == "mis-tagged" for f in problems["files"][0]["findings"])


def test_hook_rejects_bad_requests(tmp_path: Path, database: str, folder_index: Any, proxy: Any) -> None:
    import httpx

    local = folder_index("local")
    running: RunningProxy = proxy(
        config_text(tmp_path, database, [{"name": "local", "kind": "folder", "url": local.url}])
    )
    with httpx.Client(trust_env=False) as client:
        url = running.url + "/api/v1/hooks/new-files"
        assert client.post(url, json={"index": "local", "projects": ["x"]}).status_code == 401
        bad = client.post(url, json={"index": "nope", "projects": ["x"]}, headers=running.admin_headers())
        assert bad.status_code == 404 and "local" in bad.json()["error"]
        empty = client.post(url, json={"index": "local"}, headers=running.admin_headers())
        assert empty.status_code == 400
        junk = client.post(url, content=b"{not json", headers=running.admin_headers())
        assert junk.status_code == 400
    assert running.get("/api/v1/analysis/x/not-a-version").status_code == 400
