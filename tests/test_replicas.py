"""Scale-out: two ``index-proxy serve`` replicas and ``index-proxy worker`` processes sharing one
PostgreSQL database and one S3 bucket (moto on loopback), as behind a load balancer.

They serve identical pages and files; a file fetched through one replica is served by the other
from the bucket without asking the upstream; every analysis job is done once across all workers;
a worker killed (SIGKILL) in the middle of uploading a file to the bucket loses nothing and leaves
nothing visible.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
from pathlib import Path
from typing import Any

import httpx
import yaml
from support.proxy import RunningProxy, free_port
from support.s3 import S3Bucket
from support.wheels import build_wheel
from test_analysis_service import Worker, analysis, announce, queue, wait_for

from index_proxy.store.s3 import PART_SIZE

JSON_V1 = "application/vnd.pypi.simple.v1+json"


def cluster_config(database: str, bucket: S3Bucket, indexes: list[dict[str, Any]], **server: Any) -> str:
    document = {
        "server": {"host": "127.0.0.1", "port": free_port(), "admin_token": "test-token", **server},
        "storage": bucket.storage(database),
        "indexes": indexes,
    }
    return yaml.safe_dump(document, sort_keys=False)


def done_jobs(log: str) -> list[int]:
    jobs = []
    for line in log.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("msg") == "analysis done":
            jobs.append(int(record["job"]))
    return jobs


def file_url(proxy: RunningProxy, project: str, filename: str) -> str:
    files = proxy.get(f"/simple/{project}/", headers={"Accept": JSON_V1}).json()["files"]
    [entry] = [f for f in files if f["filename"] == filename]
    return "/" + entry["url"].removeprefix("../../")


def blob_key(path: Path) -> str:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return f"blobs/sha256/{digest[:2]}/{digest}"


def test_replicas_share_pages_files_and_jobs(
    tmp_path: Path, pg_database: str, s3_bucket: S3Bucket, upstreams: Any, wheel_dir: Path, proxy: Any
) -> None:
    public = upstreams(style="json", name="public")
    wheels = [build_wheel(wheel_dir, f"pkg{number}", "1.0") for number in range(6)]
    for wheel in wheels:
        public.add(wheel)
    indexes = [{"name": "public", "url": public.url}]
    # Each replica also runs an in-process analysis worker: three workers share the queue.
    a: RunningProxy = proxy(cluster_config(pg_database, s3_bucket, indexes))
    b: RunningProxy = proxy(cluster_config(pg_database, s3_bucket, indexes))
    worker = Worker(tmp_path, cluster_config(pg_database, s3_bucket, indexes), "worker")
    try:
        # Identical pages, byte for byte, in both formats, with the same validators.
        for accept in (JSON_V1, "text/html"):
            page_a = a.get("/simple/pkg0/", headers={"Accept": accept})
            page_b = b.get("/simple/pkg0/", headers={"Accept": accept})
            assert page_a.status_code == page_b.status_code == 200
            assert page_a.content == page_b.content
            assert page_a.headers["etag"] == page_b.headers["etag"]
        assert a.get("/simple/").content == b.get("/simple/").content

        # A file fetched through A is served by B from the bucket, with no upstream request.
        first = wheels[0]
        url = file_url(a, "pkg0", first.name)
        assert file_url(b, "pkg0", first.name) == url
        public.reset_log()
        assert a.get(url).content == first.read_bytes()
        assert public.count("GET", "/files/") == 1
        from_b = b.get(url)
        assert from_b.status_code == 200 and from_b.content == first.read_bytes()
        ranged = b.get(url, headers={"Range": "bytes=10-19"})
        assert ranged.status_code == 206 and ranged.content == first.read_bytes()[10:20]
        assert public.count("GET", "/files/") == 1, "replica B asked the upstream for a file A had stored"
        assert s3_bucket.blob_keys() == [blob_key(first)]

        # Every file announced once through B: each job is done once, by one of the three workers.
        announced = announce(b, {"index": "public", "projects": [f"pkg{n}" for n in range(6)]})
        assert announced["queued"] >= 5  # pkg0 may be queued already, by its first download
        wait_for(lambda: queue(a)["counts"] == {"done": len(wheels)}, what="all jobs done")
    finally:
        worker.stop()
    done = done_jobs(a.log()) + done_jobs(b.log()) + worker.done_jobs()
    assert sorted(done) == sorted(set(done)) and len(done) == len(wheels), f"done twice or lost: {done}"
    # Each wheel went into the bucket once and came from the upstream once, whoever analysed it.
    assert sorted(s3_bucket.blob_keys()) == sorted(blob_key(wheel) for wheel in wheels)
    for wheel in wheels[1:]:
        assert public.count("GET", f"/files/{wheel.name}") == 1
    assert analysis(b, "pkg3", "1.0")["files"][0]["facts"]["metadata"]["name"] == "pkg3"
    assert a.error_lines() == [] and b.error_lines() == []


def test_worker_killed_mid_upload_loses_nothing(
    tmp_path: Path, pg_database: str, s3_bucket: S3Bucket, upstreams: Any, wheel_dir: Path, proxy: Any
) -> None:
    public = upstreams(style="json", name="public")
    # Over two parts and incompressible, so the worker is uploading parts when it dies.
    wheel = build_wheel(
        wheel_dir, "bigpkg", "1.0", extra_files={"bigpkg/data.bin": os.urandom(3 * PART_SIZE)}
    )
    public.add(wheel)
    indexes = [{"name": "public", "url": public.url, "retries": 0, "timeout": 60}]
    settings = {"analysis_workers": 0, "analysis_lease": 2}
    a: RunningProxy = proxy(cluster_config(pg_database, s3_bucket, indexes, **settings))
    b: RunningProxy = proxy(cluster_config(pg_database, s3_bucket, indexes, **settings))
    assert announce(a, {"index": "public", "files": [{"filename": wheel.name}]})["queued"] == 1

    public.stall_files(after=2 * PART_SIZE + 1000)
    doomed = Worker(tmp_path, cluster_config(pg_database, s3_bucket, indexes, analysis_lease=2), "doomed")
    try:
        leased = wait_for(
            lambda: [j for j in queue(b)["jobs"] if j["state"] == "leased"], what="the job to be leased"
        )
        # Parts are in the bucket: the worker is in the middle of the upload.
        wait_for(lambda: s3_bucket.open_uploads(), what="the multipart upload to start")
    finally:
        doomed.stop(signal.SIGKILL)
        public.release_stall()
    assert leased[0]["attempts"] == 1
    # The half-sent file is an incomplete upload nobody can read; no replica serves it.
    assert s3_bucket.keys() == []
    assert s3_bucket.open_uploads() == [blob_key(wheel)]

    rescuer = Worker(tmp_path, cluster_config(pg_database, s3_bucket, indexes, analysis_lease=2), "rescuer")
    try:
        wait_for(lambda: queue(a)["counts"].get("done") == 1, what="the job to be redone")
    finally:
        rescuer.stop()
    job = queue(a)["jobs"][0]
    assert job["attempts"] == 2 and job["state"] == "done"
    assert doomed.done_jobs() == [] and rescuer.done_jobs() == [job["id"]]
    assert s3_bucket.keys() == [blob_key(wheel)]
    facts = analysis(b, "bigpkg", "1.0")["files"][0]["facts"]
    assert facts["sha256"] == hashlib.sha256(wheel.read_bytes()).hexdigest()

    # Both replicas now serve the rescued file from the bucket, the upstream is not asked again.
    public.reset_log()
    url = file_url(a, "bigpkg", wheel.name)
    for replica in (a, b):
        with httpx.Client(trust_env=False, timeout=60) as client:
            response = client.get(replica.url + url)
        assert response.status_code == 200 and response.content == wheel.read_bytes()
    assert public.count("GET", "/files/") == 0
