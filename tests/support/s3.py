"""A real S3-compatible server for the tests: moto in server mode, on a free loopback port.

moto runs as its own process (``python -m moto.server``), so the proxies, workers and the test
itself all talk to it over HTTP exactly as they would to MinIO or AWS.  Credentials are fake but
go through the usual environment variables, which is how index-proxy reads real ones.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

import boto3
import httpx
import pytest
from botocore.config import Config as BotoConfig

from support.proxy import free_port

__all__ = ["S3_ENV", "S3Bucket", "S3Server", "moto_s3_server", "s3_bucket", "s3_server"]

S3_ENV = {
    "AWS_ACCESS_KEY_ID": "index-proxy-test",
    "AWS_SECRET_ACCESS_KEY": "index-proxy-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
    # No instance-metadata lookups and no files from this machine's home: the tests touch only loopback.
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
_STARTUP_TIMEOUT = 30.0


@dataclass(frozen=True)
class S3Bucket:
    """One bucket on the test server, with a synchronous client to look inside it."""

    name: str
    endpoint_url: str
    client: Any

    @property
    def url(self) -> str:
        """``s3://bucket/blobs``: what ``storage.blobs`` is set to."""
        return f"s3://{self.name}/blobs"

    def keys(self, prefix: str = "") -> list[str]:
        listed = self.client.list_objects_v2(Bucket=self.name, Prefix=prefix)
        return sorted(item["Key"] for item in listed.get("Contents", []))

    def blob_keys(self) -> list[str]:
        return self.keys("blobs/sha256/")

    def get(self, key: str) -> bytes:
        return bytes(self.client.get_object(Bucket=self.name, Key=key)["Body"].read())

    def open_uploads(self) -> list[str]:
        """Keys of multipart uploads begun and neither completed nor aborted."""
        listed = self.client.list_multipart_uploads(Bucket=self.name)
        return sorted(upload["Key"] for upload in listed.get("Uploads", []))

    def storage(self, database: str) -> dict[str, Any]:
        """A ``storage:`` config section on this bucket."""
        return {"database": database, "blobs": self.url, "s3": {"endpoint_url": self.endpoint_url}}


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    process: subprocess.Popen[bytes]

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"],
            region_name=S3_ENV["AWS_DEFAULT_REGION"],
            config=BotoConfig(s3={"addressing_style": "path"}),
        )

    def create_bucket(self) -> S3Bucket:
        name = f"index-proxy-test-{uuid.uuid4().hex[:12]}"
        client = self.client()
        client.create_bucket(Bucket=name)
        return S3Bucket(name, self.endpoint_url, client)


@contextmanager
def moto_s3_server() -> Iterator[S3Server]:
    """Start ``python -m moto.server`` on 127.0.0.1 and a free port; stop it on exit."""
    port = free_port()
    with tempfile.TemporaryFile() as log:
        yield from _run_moto(port, log)


def _run_moto(port: int, log: IO[bytes]) -> Iterator[S3Server]:
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + _STARTUP_TIMEOUT
        with httpx.Client(trust_env=False, timeout=2.0) as client:
            while True:
                if process.poll() is not None:
                    log.seek(0)
                    output = log.read().decode(errors="replace")
                    raise RuntimeError(f"moto server exited with {process.returncode}:\n{output[-3000:]}")
                try:
                    if client.get(endpoint + "/moto-api/").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"moto server did not answer on {endpoint} within {_STARTUP_TIMEOUT}s")
                time.sleep(0.1)
        yield S3Server(endpoint, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """One moto S3 server for the session, with the fake credentials exported for every process."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in S3_ENV.items():
            patch.setenv(name, value)
        patch.delenv("AWS_ENDPOINT_URL", raising=False)
        patch.delenv("AWS_PROFILE", raising=False)
        with moto_s3_server() as server:
            yield server


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> S3Bucket:
    """A new, empty bucket on the session's moto server."""
    return s3_server.create_bucket()
