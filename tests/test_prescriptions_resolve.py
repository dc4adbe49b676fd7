"""The rule database applied end to end: ``POST /api/v1/resolve`` on a proxy with ``prescriptions/rules``.

Every seed example of the rule database is observed through a real proxy process in front of
loopback indexes: vetoes, the tensorflow-gpu pseudonym on a CUDA machine only, the AVX2 and CUDA
index choices, boots, wraps and library-usage warnings, with their justification and stack info.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from resolve_support import pins_of, post_resolve, this_machine
from support.clients import client_env
from support.proxy import RunningProxy, free_port, start_proxy
from support.upstream import UpstreamServer
from support.wheels import build_wheel

RULES = Path(__file__).resolve().parents[1] / "prescriptions" / "rules"


def _config(indexes: list[dict[str, Any]], rules: bool = True) -> str:
    data: dict[str, Any] = {
        "server": {"host": "127.0.0.1", "port": free_port(), "admin_token": "test-token"},
        "indexes": indexes,
    }
    if rules:
        data["prescriptions"] = [str(RULES)]
    return yaml.safe_dump(data, sort_keys=False)


PUBLIC = [
    ("pillow", "8.2.0", ()),
    ("pillow", "8.3.0", ()),
    ("numpy", "1.21.0", ()),
    ("h5py", "2.10.0", ()),
    ("h5py", "3.1.0", ()),
    ("urllib3", "1.5", ()),
    ("urllib3", "1.4", ()),
    ("urllib3", "1.0", ()),
    ("urllib3", "1.26.0", ()),
    ("tensorflow", "2.1.0", ("h5py", "urllib3")),
    ("tensorflow", "2.3.0", ()),
    ("tensorflow", "2.4.0", ()),
    ("tensorflow-gpu", "2.4.0", ()),
    ("gitpython", "3.1.0", ()),
    ("torch", "2.0.0", ()),
]


class Setup:
    def __init__(self, with_rules: RunningProxy, without_rules: RunningProxy) -> None:
        self.proxy = with_rules
        self.plain = without_rules


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("rules-e2e")
    dists = root / "dists"
    public = UpstreamServer(root / "public", style="json", range_support=True, metadata=True).start()
    avx2 = UpstreamServer(root / "avx2", style="html", range_support=False, metadata=False).start()
    cu118 = UpstreamServer(root / "cu118", style="html", range_support=False, metadata=False).start()
    cu121 = UpstreamServer(root / "cu121", style="html", range_support=False, metadata=False).start()
    servers = [public, avx2, cu118, cu121]
    for name, version, requires in PUBLIC:
        public.add(build_wheel(dists / "public", name, version, requires_dist=requires))
    # The AVX2 builds are tagged for this interpreter, the generic ones py3: different files.
    avx2.add(build_wheel(dists / "avx2", "tensorflow", "2.4.0", tag="py311-none-any"))
    # A newer torch only for CUDA 11.8, an older one for CUDA 12.1.
    cu118.add(build_wheel(dists / "cu118", "torch", "2.2.0+cu118"))
    cu121.add(build_wheel(dists / "cu121", "torch", "2.1.0+cu121"))
    indexes = [
        {
            "name": "aicoe-avx2",
            "url": avx2.url,
            "only": ["tensorflow"],
            "hardware": {"cpu_features": ["avx2"]},
        },
        {"name": "pytorch-cu118", "url": cu118.url, "only": ["torch"], "hardware": {"cuda": "11.8"}},
        {"name": "pytorch-cu121", "url": cu121.url, "only": ["torch"], "hardware": {"cuda": "12.1"}},
        {"name": "public", "url": public.url},
    ]
    with_rules = start_proxy(root / "with", _config(indexes))
    without_rules = start_proxy(root / "without", _config(indexes, rules=False))
    try:
        yield Setup(with_rules, without_rules)
    finally:
        for running in (with_rules, without_rules):
            running.stop()
        for server in servers:
            server.stop()


def resolve_ok(
    proxy: RunningProxy, requirements: list[str], environment: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    response = post_resolve(proxy, {"requirements": requirements, "environment": environment, **extra})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def cpu(*features: str) -> dict[str, Any]:
    return this_machine(cpu_level="x86_64_v2", features=features)


def cuda(version: str, *features: str) -> dict[str, Any]:
    return this_machine(cpu_level="x86_64_v2", features=features, cuda=version)


def sources(body: dict[str, Any], key: str) -> set[str]:
    return {entry.get("source", "") for entry in body["advice"][key]}


def messages(body: dict[str, Any], key: str) -> str:
    return "\n".join(entry["message"] for entry in body["advice"][key])


def index_of(body: dict[str, Any], name: str) -> str:
    return next(pin["index"] for pin in body["pins"] if pin["name"] == name)


def test_pillow_830_is_not_combined_with_numpy(setup: Setup) -> None:
    body = resolve_ok(setup.proxy, ["pillow", "numpy"], cpu())
    assert pins_of(body)["pillow"] == "8.2.0"
    assert pins_of(resolve_ok(setup.plain, ["pillow", "numpy"], cpu()))["pillow"] == "8.3.0"
    # Alone, Pillow 8.3.0 is fine.
    assert pins_of(resolve_ok(setup.proxy, ["pillow"], cpu()))["pillow"] == "8.3.0"
    # Asked for explicitly, the veto explains the failure.
    response = post_resolve(setup.proxy, {"requirements": ["pillow==8.3.0", "numpy"], "environment": cpu()})
    assert response.status_code == 422, response.text
    assert "Pillow830NumPyGroup" in response.json()["report"]


def test_tensorflow_21_gets_h5py_2_and_a_good_urllib3(setup: Setup) -> None:
    body = resolve_ok(setup.proxy, ["tensorflow==2.1.0", "urllib3<1.26"], cpu())
    pins = pins_of(body)
    assert pins["h5py"] == "2.10.0"
    assert pins["urllib3"] == "1.0"
    plain = pins_of(resolve_ok(setup.plain, ["tensorflow==2.1.0", "urllib3<1.26"], cpu()))
    assert (plain["h5py"], plain["urllib3"]) == ("3.1.0", "1.5")


def test_urllib3_veto_reports_its_reason(setup: Setup) -> None:
    response = post_resolve(
        setup.proxy, {"requirements": ["tensorflow==2.1.0", "urllib3==1.5"], "environment": cpu()}
    )
    assert response.status_code == 422
    assert "TensorFlow21Urllib3Step" in response.json()["report"]


def test_tensorflow_gpu_pseudonym_on_cuda_only(setup: Setup) -> None:
    gpu = resolve_ok(setup.proxy, ["tensorflow"], cuda("11.2"))
    assert "tensorflow-gpu" in pins_of(gpu)
    assert "tensorflow" not in pins_of(gpu)
    assert any(s.endswith("TensorFlowGPUPseudonym") for s in sources(gpu, "stack_info"))
    assert gpu["advice"]["search"]["improvements"] >= 1
    plain = resolve_ok(setup.proxy, ["tensorflow"], cpu())
    assert set(pins_of(plain)) == {"tensorflow"}
    assert not any(s.endswith("TensorFlowGPUPseudonym") for s in sources(plain, "stack_info"))


def test_tensorflow_versions_follow_the_cuda_support_matrix(setup: Setup) -> None:
    # CUDA 10.1: TensorFlow 2.1 to 2.3 only.
    body = resolve_ok(setup.proxy, ["tensorflow"], cuda("10.1"))
    assert pins_of(body) == {"tensorflow": "2.3.0"}
    assert any("CUDA101" in s for s in sources(body, "stack_info"))
    assert pins_of(resolve_ok(setup.plain, ["tensorflow"], cuda("10.1"))) == {"tensorflow": "2.4.0"}


def test_the_avx2_index_only_on_avx2_machines(setup: Setup) -> None:
    avx2 = resolve_ok(setup.proxy, ["tensorflow"], cpu("avx2"))
    assert index_of(avx2, "tensorflow") == "aicoe-avx2"
    assert any(s.endswith("TensorFlowAVX2Step") for s in sources(avx2, "justification"))
    assert avx2["advice"]["score"] == pytest.approx(0.2)
    baseline = resolve_ok(setup.proxy, ["tensorflow"], cpu())
    assert index_of(baseline, "tensorflow") == "public"
    assert not any(s.endswith("TensorFlowAVX2Step") for s in sources(baseline, "justification"))


def test_torch_comes_from_the_index_of_the_driver_cuda(setup: Setup) -> None:
    on_121 = resolve_ok(setup.proxy, ["torch"], cuda("12.1"))
    assert (pins_of(on_121)["torch"], index_of(on_121, "torch")) == ("2.1.0+cu121", "pytorch-cu121")
    assert any(s.endswith("TorchCUDA121IndexSieve") for s in sources(on_121, "stack_info"))
    # Without the rules a 12.1 driver also runs the newer CUDA 11.8 build, and gets it.
    assert index_of(resolve_ok(setup.plain, ["torch"], cuda("12.1")), "torch") == "pytorch-cu118"
    on_118 = resolve_ok(setup.proxy, ["torch"], cuda("11.8"))
    assert index_of(on_118, "torch") == "pytorch-cu118"
    no_cuda = resolve_ok(setup.proxy, ["torch"], cpu())
    assert (pins_of(no_cuda)["torch"], index_of(no_cuda, "torch")) == ("2.0.0", "public")


def test_a_gpu_without_cuda_is_reported(setup: Setup) -> None:
    body = resolve_ok(setup.proxy, ["numpy"], cpu(), runtime_environment={"gpu_model": "Tesla T4"})
    assert any(s.endswith("GPUWithoutCUDABoot") for s in sources(body, "stack_info"))
    assert "GPU is present" in messages(body, "stack_info")
    quiet = resolve_ok(setup.proxy, ["numpy"], cpu())
    assert not any(s.endswith("GPUWithoutCUDABoot") for s in sources(quiet, "stack_info"))


def test_gitpython_needs_git(setup: Setup) -> None:
    body = resolve_ok(setup.proxy, ["gitpython"], cpu())
    assert any(s.endswith("GitPythonGitBoot") for s in sources(body, "stack_info"))
    assert any(s.endswith("GitPythonGitWrap") for s in sources(body, "justification"))
    for entry in body["advice"]["justification"] + body["advice"]["stack_info"]:
        assert entry["link"].startswith("https://")


def test_mktemp_usage_is_warned_about(setup: Setup) -> None:
    used = {"tempfile": ["tempfile", "tempfile.mkdtemp", "tempfile.mktemp"]}
    body = resolve_ok(setup.proxy, ["numpy"], cpu(), library_usage=used)
    assert any(s.endswith("TempfileMktempWrap") for s in sources(body, "stack_info"))
    clean = resolve_ok(setup.proxy, ["numpy"], cpu(), library_usage={"tempfile": ["tempfile.mkdtemp"]})
    assert not any(s.endswith("TempfileMktempWrap") for s in sources(clean, "stack_info"))


def test_bad_advice_fields_are_rejected_with_the_key(setup: Setup) -> None:
    for extra, key in (
        ({"recommendation_type": "fastest"}, "recommendation_type"),
        ({"labels": ["x"]}, "labels"),
        ({"library_usage": {"os": "os.path"}}, "library_usage"),
        ({"runtime_environment": {"gpu": "x"}}, "runtime_environment"),
        ({"search": {"budget_seconds": 99}}, "search.budget_seconds"),
    ):
        response = post_resolve(setup.proxy, {"requirements": ["numpy"], "environment": cpu(), **extra})
        assert response.status_code == 400, (extra, response.text)
        assert key in response.json()["error"]


def test_lock_scan_through_the_proxy_prints_the_warning(setup: Setup, tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "requirements.in").write_text("numpy\n")
    (project / "machine.json").write_text(json.dumps(cpu()))
    (project / "src" / "tool.py").write_text("import tempfile\nname = tempfile.mktemp()\n")
    command = [sys.executable, "-m", "index_proxy", "lock", "--server", setup.proxy.url]
    command += ["--environment", "machine.json", "--scan", "src", "--recommendation-type", "stable"]
    done = subprocess.run(
        command,
        cwd=project,
        env=client_env(tmp_path / "home", {"PYTHONPATH": str(RULES.parents[1])}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "advice (stable)" in done.stdout
    assert "WARNING: tempfile.mktemp() is insecure" in done.stdout
    assert (project / "requirements.txt").read_text().startswith("#")
