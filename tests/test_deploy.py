"""docker-compose.yml stays runnable without running it (CI has no Docker daemon).

Checked: every image builds from files in this repository, every mounted file exists, each
index-proxy service runs a real ``index-proxy`` subcommand with a config file the loader accepts in
that service's environment, the config names the compose services it talks to, the load balancer
sends traffic to exactly the replicas, and Pulp's plugin settings point back at the balancer.
"""

from __future__ import annotations

import ast
import fnmatch
import re
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from support.proxy import REPO_ROOT

from index_proxy import cli, config

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
INDEX_PROXY_DOCKERFILE = REPO_ROOT / "Dockerfile"
PULP_DOCKERFILE = REPO_ROOT / "config" / "pulp" / "Dockerfile"
_INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?::?-(?P<default>[^}]*))?\}")


def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(document, dict) and isinstance(document.get("services"), dict)
    return document


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]  # type: ignore[no-any-return]


def interpolate(value: str) -> str:
    """Compose's ``${VAR:-default}`` with nothing set in the environment: the defaults."""
    assert "${" not in _INTERPOLATION.sub("", value), f"unsupported interpolation in {value!r}"
    return _INTERPOLATION.sub(lambda match: match.group("default") or "", value)


def environment(service: dict[str, Any]) -> dict[str, str]:
    items = service.get("environment") or {}
    if isinstance(items, list):
        items = dict(item.split("=", 1) for item in items)
    return {str(key): interpolate(str(value)) for key, value in items.items()}


def dockerfile(service: dict[str, Any]) -> Path | None:
    build = service.get("build")
    if build is None:
        return None
    if isinstance(build, str):
        build = {"context": build}
    return (REPO_ROOT / build.get("context", ".") / build.get("dockerfile", "Dockerfile")).resolve()


def bind_mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> the repository file mounted there (``./...:target[:mode]`` entries)."""
    mounts: dict[str, Path] = {}
    for volume in service.get("volumes") or []:
        source, target, *_ = str(volume).split(":")
        if source.startswith("."):
            mounts[target] = (REPO_ROOT / source).resolve()
    return mounts


def index_proxy_services() -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in services().items()
        if dockerfile(service) == INDEX_PROXY_DOCKERFILE.resolve()
    }


def command_args(service: dict[str, Any]) -> Any:
    command = service.get("command")
    assert isinstance(command, list), "write the command as a list: it is parsed as argv"
    try:
        return cli.build_parser().parse_args(command)
    except SystemExit:
        pytest.fail(f"{command} is not a valid index-proxy command line")


def config_file(name: str, service: dict[str, Any]) -> Path:
    args = command_args(service)
    mounts = bind_mounts(service)
    assert args.config in mounts, f"{name}: --config {args.config} is not mounted from the repository"
    return mounts[args.config]


def dockerignore_excludes(path: str) -> bool:
    patterns = [
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    parts = Path(path).parts
    prefixes = ["/".join(parts[: end + 1]) for end in range(len(parts))]
    return any(
        fnmatch.fnmatch(prefix, pattern.removeprefix("**/")) or fnmatch.fnmatch(prefix, pattern)
        for pattern in patterns
        for prefix in prefixes
    )


@pytest.mark.parametrize("name", sorted(services()))
def test_service_has_an_image_or_a_dockerfile_in_the_repository(name: str) -> None:
    service = services()[name]
    assert "image" in service or "build" in service, f"{name} has neither image nor build"
    path = dockerfile(service)
    if path is None:
        return
    assert path.is_file(), f"{name}: {path} does not exist"
    copied = 0
    for line in path.read_text().splitlines():
        words = line.split()
        if not words or words[0] != "COPY" or any(word.startswith("--from") for word in words):
            continue
        for source in words[1:-1]:
            assert (REPO_ROOT / source).exists(), f"{path.name}: COPY {source}: not in the repository"
            assert not dockerignore_excludes(source), f"{path.name}: COPY {source} is in .dockerignore"
            copied += 1
    assert copied, f"{path.name} copies nothing from the repository"


def test_mounted_files_and_named_volumes_exist() -> None:
    document = compose()
    declared = set(document.get("volumes") or {})
    for name, service in document["services"].items():
        for volume in service.get("volumes") or []:
            source = str(volume).split(":")[0]
            if source.startswith("."):
                assert (REPO_ROOT / source).exists(), f"{name} mounts {source}: not in the repository"
            else:
                assert source in declared, f"{name} uses volume {source}, not declared under volumes:"


def test_files_named_by_commands_are_mounted() -> None:
    for name, service in services().items():
        mounts = bind_mounts(service)
        words = [*(service.get("entrypoint") or []), *(service.get("command") or [])]
        for word in words:
            if isinstance(word, str) and word.startswith("/etc/"):
                assert word in mounts, f"{name} runs {word}, which no volume mounts"
                assert mounts[word].is_file()


def test_dependencies_name_services() -> None:
    names = set(services())
    for name, service in services().items():
        depends = service.get("depends_on") or []
        for other in depends:
            assert other in names, f"{name} depends on {other}, which is not a service"


def test_two_replicas_and_one_worker_run_real_subcommands() -> None:
    commands = Counter(command_args(service).command for service in index_proxy_services().values())
    assert commands == {"serve": 2, "worker": 1}
    configs = {config_file(name, service) for name, service in index_proxy_services().items()}
    assert len(configs) == 1, "replicas and workers must read one config: they share its storage"


def test_index_proxy_config_passes_check_config(monkeypatch: pytest.MonkeyPatch) -> None:
    compose_services = services()
    for name, service in index_proxy_services().items():
        path = config_file(name, service)
        for variable in ("PGPASSWORD", "PULP_PASSWORD", "AWS_ACCESS_KEY_ID", "INDEX_PROXY_ADMIN_TOKEN"):
            monkeypatch.delenv(variable, raising=False)
        for key, value in environment(service).items():
            monkeypatch.setenv(key, value)
        assert cli.main(["check-config", str(path)]) == 0, f"{name}: {path} does not pass check-config"

        loaded = config.load_config(path)
        # Shared state is what makes replicas interchangeable.
        assert loaded.storage.database.startswith("postgresql+asyncpg://")
        assert loaded.storage.blobs.startswith("s3://")
        urls = [loaded.storage.database, loaded.storage.s3.endpoint_url or ""]
        urls += [i.url for i in loaded.indexes if i.url.startswith("http")]
        urls += [i.api_url for i in loaded.indexes if i.api_url]
        hosts = {urlsplit(url).hostname for url in urls}
        assert hosts <= set(compose_services), f"{path.name} names hosts that are not services: {hosts}"
        assert [i.kind for i in loaded.indexes] == ["pulp", "simple"]
        assert loaded.indexes[-1].url == "pip"
        if command_args(service).command == "serve":
            assert loaded.server.host == "0.0.0.0"


def test_load_balancer_sends_to_exactly_the_replicas() -> None:
    balancer = services()["balancer"]
    nginx_conf = bind_mounts(balancer)["/etc/nginx/nginx.conf"].read_text()
    servers = set(re.findall(r"^\s*server\s+([\w.-]+:\d+)", nginx_conf, re.MULTILINE))
    replicas = {
        name: service
        for name, service in index_proxy_services().items()
        if command_args(service).command == "serve"
    }
    port = yaml.safe_load(config_file(*next(iter(replicas.items()))).read_text())["server"]["port"]
    assert servers == {f"{name}:{port}" for name in replicas}
    listen = re.search(r"^\s*listen\s+(\d+);", nginx_conf, re.MULTILINE)
    assert listen is not None
    assert any(str(published).endswith(f":{listen.group(1)}") for published in balancer["ports"])
    assert set(balancer["depends_on"]) == set(replicas)


def test_pulp_plugin_notifies_the_balancer_about_the_pulp_index() -> None:
    pulp_services = {
        name: service
        for name, service in services().items()
        if dockerfile(service) == PULP_DOCKERFILE.resolve()
    }
    assert {"pulp-api", "pulp-content", "pulp-worker"} <= set(pulp_services)
    settings_path = bind_mounts(services()["pulp-worker"])["/etc/pulp/settings.py"]
    tree = ast.parse(settings_path.read_text())
    constants = {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    proxy_url = urlsplit(constants["INDEX_PROXY_URL"])
    assert proxy_url.hostname == "balancer" and proxy_url.port == 8080
    compose_config = yaml.safe_load((REPO_ROOT / "config" / "compose.yaml").read_text())
    pulp_indexes = [index["name"] for index in compose_config["indexes"] if index.get("kind") == "pulp"]
    assert constants["INDEX_PROXY_INDEX"] in pulp_indexes
    # The plugin authenticates with the token the replicas check.
    both = [*pulp_services.values(), *index_proxy_services().values()]
    assert len({environment(service)["INDEX_PROXY_ADMIN_TOKEN"] for service in both}) == 1
