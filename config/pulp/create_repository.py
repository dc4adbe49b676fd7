"""One-shot (the pulp-repository service): the Python repository and distribution index-proxy reads.

Creates repository ``internal`` and a distribution serving it at ``/pypi/internal/simple/`` unless
they exist, through Pulp's REST API (creating a distribution is a task, so a Pulp worker must run).
Standard library only: it runs in the Pulp image.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
import urllib.parse
import urllib.request
from typing import Any

API = os.environ.get("PULP_API_URL", "http://pulp-api:24817/pulp/api/v3/")
NAME = os.environ.get("PULP_REPOSITORY", "internal")
_CREDENTIALS = f"admin:{os.environ['PULP_ADMIN_PASSWORD']}".encode()
_HEADERS = {
    "Authorization": "Basic " + base64.b64encode(_CREDENTIALS).decode(),
    "Content-Type": "application/json",
}


def call(method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    url = urllib.parse.urljoin(API, path)
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data, _HEADERS, method=method)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def wait_until_ready(deadline: float) -> None:
    """Until the API answers and lists a worker: a distribution is created by a task."""
    while True:
        try:
            status = call("GET", "status/")
            if status.get("online_workers"):
                return
            problem = "no Pulp worker online yet"
        except (OSError, ValueError) as error:
            problem = f"{type(error).__name__}: {error}"
        if time.monotonic() > deadline:
            sys.exit(f"Pulp's API at {API} is not ready: {problem}")
        time.sleep(2)


def wait_for_task(href: str, deadline: float) -> None:
    while True:
        task = call("GET", href)
        if task["state"] == "completed":
            return
        if task["state"] in ("failed", "canceled"):
            sys.exit(f"Pulp task {href} {task['state']}: {task.get('error')}")
        if time.monotonic() > deadline:
            sys.exit(f"Pulp task {href} still {task['state']}")
        time.sleep(1)


def main() -> None:
    deadline = time.monotonic() + 600
    wait_until_ready(deadline)
    query = urllib.parse.urlencode({"name": NAME})
    found = call("GET", f"repositories/python/python/?{query}")["results"]
    if found:
        repository = found[0]["pulp_href"]
    else:
        repository = call("POST", "repositories/python/python/", {"name": NAME})["pulp_href"]
        print(f"created repository {NAME}")
    if not call("GET", f"distributions/python/pypi/?{query}")["results"]:
        body = {"name": NAME, "base_path": NAME, "repository": repository}
        wait_for_task(call("POST", "distributions/python/pypi/", body)["task"], deadline)
        print(f"created distribution {NAME}: {urllib.parse.urljoin(API, f'/pypi/{NAME}/simple/')}")


if __name__ == "__main__":
    main()
