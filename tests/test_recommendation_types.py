"""Recommendation types end to end: advisories imported with the CLI change what a proxy pins.

``security`` removes an advised version, ``stable`` prefers the non-advised one when nothing else
differs, ``latest`` keeps the newest and reports the advisory; the improvement search is
reproducible with a seed and never returns less than the first resolution.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from resolve_support import pins_of, post_resolve, this_machine
from support.proxy import RunningProxy, free_port, start_proxy
from support.upstream import UpstreamServer
from support.wheels import build_wheel

# An OSV record in the PyPA advisory database's format: webkit 2.0 is affected, 2.0.1 fixes it.
ADVISORY = """
id: PYSEC-2099-1
modified: "2099-01-02T00:00:00Z"
published: "2099-01-01T00:00:00Z"
aliases: [CVE-2099-0001]
summary: webkit 2.0 runs scripts from untrusted input
details: A test advisory.
affected:
- package: {name: webkit, ecosystem: PyPI}
  ranges:
  - type: ECOSYSTEM
    events: [{introduced: "2.0"}, {fixed: "2.0.1"}]
  versions: ["2.0"]
references:
- {type: ADVISORY, url: "https://example.org/advisories/PYSEC-2099-1"}
"""


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningProxy]:
    root = tmp_path_factory.mktemp("recommendations")
    public = UpstreamServer(root / "public", style="json", range_support=True, metadata=True).start()
    for version in ("1.8", "1.9", "2.0"):
        public.add(build_wheel(root / "dists", "webkit", version))
    for version in ("1.0", "2.0"):
        public.add(build_wheel(root / "dists", "app", version, requires_dist=["webkit>=1.8"]))
    config = {
        "server": {"host": "127.0.0.1", "port": free_port(), "admin_token": "test-token"},
        "indexes": [{"name": "public", "url": public.url}],
    }
    running = start_proxy(root / "proxy", yaml.safe_dump(config))
    advisories = root / "osv" / "webkit"
    advisories.mkdir(parents=True)
    (advisories / "PYSEC-2099-1.yaml").write_text(ADVISORY)
    imported = subprocess.run(
        [
            sys.executable,
            "-m",
            "index_proxy",
            "advisories",
            "import",
            str(root / "osv"),
            "--config",
            str(running.config_path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert imported.returncode == 0, imported.stderr
    try:
        yield running
    finally:
        running.stop()
        public.stop()


def resolve_ok(proxy: RunningProxy, kind: str, **extra: Any) -> dict[str, Any]:
    payload = {"requirements": ["app"], "environment": this_machine(), "recommendation_type": kind, **extra}
    response = post_resolve(proxy, payload)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_latest_keeps_the_newest_and_reports_the_advisory(proxy: RunningProxy) -> None:
    body = resolve_ok(proxy, "latest")
    assert pins_of(body)["webkit"] == "2.0"
    (note,) = [n for n in body["advice"]["justification"] if n.get("advisory") == "PYSEC-2099-1"]
    assert note["cve_id"] == "CVE-2099-0001"
    assert note["link"] == "https://example.org/advisories/PYSEC-2099-1"
    assert body["advice"]["score"] == 0.0


def test_security_drops_the_advised_version(proxy: RunningProxy) -> None:
    body = resolve_ok(proxy, "security")
    assert pins_of(body)["webkit"] == "1.9"
    rejected = next(j for j in body["justification"] if j["package"] == "webkit")["rejected_files"]
    assert any("removed for security: PYSEC-2099-1" in r["reason"] for r in rejected)
    assert body["advice"]["search"]["trials"] == 0


@pytest.mark.parametrize("kind", ["stable", "performance"])
def test_stable_prefers_the_version_without_advisory(proxy: RunningProxy, kind: str) -> None:
    body = resolve_ok(proxy, kind, search={"budget_seconds": 30, "max_trials": 20})
    assert pins_of(body)["webkit"] == "1.9"
    advice = body["advice"]
    assert (advice["first_score"], advice["score"]) == (-0.2, 0.0)
    assert advice["search"]["improvements"] >= 1


def test_testing_penalises_nothing(proxy: RunningProxy) -> None:
    assert pins_of(resolve_ok(proxy, "testing"))["webkit"] == "2.0"


def test_the_search_is_reproducible_and_never_worse(proxy: RunningProxy) -> None:
    runs = [
        resolve_ok(proxy, "stable", search={"budget_seconds": 30, "max_trials": trials, "seed": seed})
        for seed in (1, 2)
        for trials in (0, 1, 5)
        for _ in range(2)
    ]
    for first, second in zip(runs[::2], runs[1::2], strict=True):
        assert pins_of(first) == pins_of(second)
        assert first["advice"]["search"] | {"seconds": 0} == second["advice"]["search"] | {"seconds": 0}
    for body in runs:
        assert body["advice"]["score"] >= body["advice"]["first_score"]
    # No trials allowed: the first resolution stands.
    assert pins_of(runs[0])["webkit"] == "2.0"
