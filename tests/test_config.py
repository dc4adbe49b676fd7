"""Tests for index_proxy.config: schema, defaults, path and URL normalization, and every problem."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import pytest

from index_proxy.config import (
    Config,
    ConfigError,
    ConfigProblem,
    HardwareSpec,
    IndexConfig,
    MonitorRule,
    S3Config,
    ServerConfig,
    StorageConfig,
    default_config,
    glob_matches,
    load_config,
    parse_config,
)

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _no_admin_token(monkeypatch: pytest.MonkeyPatch) -> None:
    # A token exported in the developer's shell would otherwise leak into every expectation.
    monkeypatch.delenv("INDEX_PROXY_ADMIN_TOKEN", raising=False)


def parse(text: str, base_dir: Path | None = None) -> Config:
    return parse_config(textwrap.dedent(text), "proxy.yaml", base_dir)


def problems(text: str, base_dir: Path | None = None) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as info:
        parse(text, base_dir)
    return info.value.problems


def places(text: str, base_dir: Path | None = None) -> list[tuple[int | None, str]]:
    return [(problem.line, problem.key) for problem in problems(text, base_dir)]


def only_problem(text: str, base_dir: Path | None = None) -> ConfigProblem:
    found = problems(text, base_dir)
    assert len(found) == 1, "\n".join(map(str, found))
    assert found[0].file == "proxy.yaml"
    return found[0]


PIP = "indexes: [{name: pypi, url: pip}]\n"


class TestDefaults:
    def test_default_config(self, tmp_path: Path) -> None:
        assert default_config(tmp_path) == Config(
            server=ServerConfig(),
            storage=StorageConfig(
                database=f"sqlite+aiosqlite:///{tmp_path}/var/index-proxy.db",
                blobs=str(tmp_path / "var" / "blobs"),
            ),
            indexes=(IndexConfig(name="pypi", url="pip"),),
            source=None,
        )

    def test_default_config_is_relative_to_the_working_directory(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        assert default_config().storage.blobs == str(tmp_path / "var" / "blobs")

    def test_server_defaults(self) -> None:
        assert parse(PIP).server == ServerConfig(
            host="127.0.0.1",
            port=8000,
            public_url=None,
            admin_token=None,
            page_ttl=600.0,
            default_profile=None,
        )

    def test_optional_sections_default_when_absent_or_null(self, tmp_path: Path) -> None:
        absent = parse(PIP, tmp_path)
        null = parse("server:\nstorage:\nprofiles:\nmonitor:\nprescriptions:\n" + PIP, tmp_path)
        assert absent == null == dataclasses.replace(default_config(tmp_path), source="proxy.yaml")
        assert absent.profiles == {}
        assert absent.monitor == ()
        assert absent.prescriptions == ()

    def test_index_defaults(self) -> None:
        index = parse("indexes: [{name: up, url: 'http://up.example/simple/'}]").indexes[0]
        assert index == IndexConfig(name="up", url="http://up.example/simple/")
        assert (index.kind, index.owns, index.only, index.hardware) == ("simple", (), None, None)
        assert (index.ttl, index.timeout, index.retries) == (None, 10.0, 2)

    def test_shipped_default_yaml_is_the_built_in_default(self) -> None:
        loaded = load_config(REPO / "config" / "default.yaml")
        assert loaded.source == str(REPO / "config" / "default.yaml")
        assert dataclasses.replace(loaded, source=None) == default_config(REPO / "config")

    def test_shipped_example_yaml_is_valid(self) -> None:
        config = load_config(REPO / "config" / "example.yaml")
        assert [(index.name, index.kind) for index in config.indexes] == [
            ("internal", "pulp"),
            ("aicoe-avx2", "simple"),
            ("pytorch-cu121", "simple"),
            ("public", "simple"),
        ]
        assert config.index("internal").owns == ("acme-*",)
        assert config.index("aicoe-avx2").hardware == HardwareSpec(("avx2",), "x86_64_v3")
        assert config.index("pytorch-cu121").hardware == HardwareSpec(cuda="12.1")
        assert config.index("public").url == "pip"
        assert set(config.profiles) == {"avx2-box", "gpu-box"}
        assert config.storage.database.startswith("postgresql+asyncpg://")
        text = (REPO / "config" / "example.yaml").read_text()
        # The public index is "the index pip is configured with", never a named host.
        from pip._internal.models.index import PyPI

        assert PyPI.netloc not in text and PyPI.file_storage_domain not in text


FULL = """\
server:
  host: 0.0.0.0
  port: 9000
  public_url: https://packages.example/
  admin_token: s3cret
  page_ttl: 30
  default_profile: avx2-box
storage:
  database: postgresql://proxy@db.example/proxy
  blobs: s3://bucket/prefix
indexes:
  - name: internal
    url: http://pulp.example/pypi/internal/simple/
    kind: pulp
    owns: ["Acme_*", acme.tools]
    ttl: 0
    timeout: 2.5
    retries: 0
    username: reader
    password: hunter2
  - name: aicoe-avx2
    url: http://builds.example/avx2/simple
    only: [TensorFlow]
    hardware: {cpu_features: [AVX2, fma, avx2], cpu_level: x86-64-v3}
  - name: public
    url: pip
profiles:
  avx2-box: {cpu_features: [avx2, fma], cpu_level: x86_64_v3, cuda: null}
  gpu-box: {cuda: "12.1"}
monitor:
  - {index: internal}
  - {index: public, projects: [tensorflow, "torch*"], versions: " >=2,<3 "}
prescriptions: [rules, /abs/rules]
"""


def test_full_config(tmp_path: Path) -> None:
    config = parse(FULL, tmp_path)
    assert config.server == ServerConfig(
        host="0.0.0.0",
        port=9000,
        public_url="https://packages.example",
        admin_token="s3cret",
        page_ttl=30.0,
        default_profile="avx2-box",
    )
    assert config.storage == StorageConfig(
        "postgresql+asyncpg://proxy@db.example/proxy", "s3://bucket/prefix"
    )
    assert config.indexes == (
        IndexConfig(
            name="internal",
            url="http://pulp.example/pypi/internal/simple/",
            kind="pulp",
            owns=("acme-*", "acme-tools"),
            ttl=0.0,
            timeout=2.5,
            retries=0,
            username="reader",
            password="hunter2",
        ),
        IndexConfig(
            name="aicoe-avx2",
            url="http://builds.example/avx2/simple/",
            only=("tensorflow",),
            hardware=HardwareSpec(cpu_features=("avx2", "fma"), cpu_level="x86_64_v3"),
        ),
        IndexConfig(name="public", url="pip"),
    )
    assert dict(config.profiles) == {
        "avx2-box": HardwareSpec(("avx2", "fma"), "x86_64_v3", None),
        "gpu-box": HardwareSpec(cuda="12.1"),
    }
    assert config.monitor == (
        MonitorRule("internal", ("*",), None),
        MonitorRule("public", ("tensorflow", "torch*"), ">=2,<3"),
    )
    assert config.prescriptions == (str(tmp_path / "rules"), "/abs/rules")
    assert config.source == "proxy.yaml"
    assert config.index("public").url == "pip"
    with pytest.raises(KeyError):
        config.index("nope")


def test_values_are_frozen_with_slots() -> None:
    config = parse(FULL)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.server.port = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.profiles["new"] = HardwareSpec()  # type: ignore[index]
    for value in (
        config,
        config.server,
        config.storage,
        config.indexes[0],
        config.monitor[0],
        HardwareSpec(),
    ):
        assert not hasattr(value, "__dict__")
    assert hash(config.indexes[1]) == hash(dataclasses.replace(config.indexes[1]))


def test_password_is_not_in_repr() -> None:
    assert "hunter2" not in repr(parse(FULL).indexes[0])


def test_yaml_anchors_and_merge_keys_are_honoured() -> None:
    config = parse(
        """\
        indexes:
          - &base {name: a, url: "http://a.example/", timeout: 3, retries: 5}
          - {<<: *base, name: b}
        """
    )
    assert config.indexes[1] == dataclasses.replace(config.indexes[0], name="b")
    assert (config.indexes[1].timeout, config.indexes[1].retries) == (3.0, 5)


class TestPaths:
    def test_relative_paths_resolve_against_the_file_folder(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        folder = tmp_path / "etc"
        (folder / "wheels").mkdir(parents=True)
        path = folder / "proxy.yaml"
        path.write_text(
            textwrap.dedent(
                """\
                storage: {database: "sqlite:///state/db.sqlite", blobs: ../blobs}
                indexes: [{name: local, url: wheels, kind: folder}]
                prescriptions: [rules, ./more/../other]
                """
            )
        )
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        monkeypatch.chdir(elsewhere)
        config = load_config(path)
        assert config.storage.database == f"sqlite+aiosqlite:///{folder}/state/db.sqlite"
        assert config.storage.blobs == str(tmp_path / "blobs")
        assert config.indexes[0].url == str(folder / "wheels")
        assert config.prescriptions == (str(folder / "rules"), str(folder / "other"))
        assert config.source == str(path)

    def test_relative_file_path_resolves_against_its_folder(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        (tmp_path / "conf").mkdir()
        (tmp_path / "conf" / "proxy.yaml").write_text(PIP)
        monkeypatch.chdir(tmp_path)
        config = load_config("conf/proxy.yaml")
        assert config.source == "conf/proxy.yaml"
        assert config.storage.blobs == str(tmp_path / "conf" / "var" / "blobs")

    def test_absolute_paths_are_kept(self, tmp_path: Path) -> None:
        config = parse(
            f"""\
            storage: {{database: "sqlite:///{tmp_path}/db.sqlite", blobs: "{tmp_path}/blobs"}}
            indexes: [{{name: local, url: "{tmp_path}", kind: folder}}]
            """,
            Path("/somewhere/else"),
        )
        assert config.storage.database == f"sqlite+aiosqlite:///{tmp_path}/db.sqlite"
        assert config.storage.blobs == f"{tmp_path}/blobs"
        assert config.indexes[0].url == str(tmp_path)

    def test_home_is_expanded(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("HOME", str(tmp_path))
        assert parse("storage: {blobs: ~/blobs}\n" + PIP).storage.blobs == str(tmp_path / "blobs")

    def test_folder_may_be_a_file_url(self, tmp_path: Path) -> None:
        config = parse(f"indexes: [{{name: local, url: 'file://{tmp_path}', kind: folder}}]")
        assert config.indexes[0].url == str(tmp_path)


class TestDatabaseUrls:
    @pytest.mark.parametrize(
        ("written", "expected"),
        [
            # SQLite: the async driver is added and a relative path is anchored at the file's folder.
            ("sqlite:///db.sqlite", "sqlite+aiosqlite:///{base}/db.sqlite"),
            ("sqlite:///state/../db.sqlite?timeout=5", "sqlite+aiosqlite:///{base}/db.sqlite?timeout=5"),
            ("sqlite:////abs/db.sqlite", "sqlite+aiosqlite:////abs/db.sqlite"),
            ("sqlite+aiosqlite:///db.sqlite", "sqlite+aiosqlite:///{base}/db.sqlite"),
            ("sqlite://", "sqlite+aiosqlite://"),
            ("sqlite:///:memory:", "sqlite+aiosqlite:///:memory:"),
            # PostgreSQL: the rest of the URL is kept byte for byte.
            ("postgresql://u:p%40ss@db.example:5433/proxy?ssl=require", "postgresql+asyncpg://u:p%40ss@db.example:5433/proxy?ssl=require"),
            ("postgres://db.example/proxy", "postgresql+asyncpg://db.example/proxy"),
            ("postgresql+asyncpg://db.example/proxy", "postgresql+asyncpg://db.example/proxy"),
            ("postgresql+psycopg://db.example/proxy", "postgresql+psycopg://db.example/proxy"),
        ],
    )  # fmt: skip
    def test_async_url(self, tmp_path: Path, written: str, expected: str) -> None:
        config = parse(f"storage: {{database: '{written}'}}\n" + PIP, tmp_path)
        assert config.storage.database == expected.format(base=tmp_path)

    @pytest.mark.parametrize(
        ("written", "fragment"),
        [
            ("var/db.sqlite", "is not a database URL"),
            ("mysql://db.example/proxy", 'unsupported database "mysql"'),
            ("postgresql+psycopg2://db.example/proxy", 'driver "psycopg2" cannot run under asyncio'),
            ("sqlite+pysqlite:///db.sqlite", 'driver "pysqlite" cannot run under asyncio'),
        ],
    )
    def test_bad_url(self, written: str, fragment: str) -> None:
        problem = only_problem(f"storage:\n  database: '{written}'\n" + PIP)
        assert (problem.line, problem.key) == (2, "storage.database")
        assert fragment in problem.message


class TestBlobs:
    def test_s3_is_kept_as_written(self) -> None:
        assert (
            parse("storage: {blobs: 's3://bucket/some/prefix'}\n" + PIP).storage.blobs
            == "s3://bucket/some/prefix"
        )

    @pytest.mark.parametrize(
        ("written", "fragment"),
        [
            ("s3:///prefix", "names no bucket"),
            ("gs://bucket/prefix", "unsupported blob store"),
            ("s3://My_Bucket/prefix", '"My_Bucket" is not a valid bucket name'),
            ("s3://bucket/prefix?versionId=1", "without '?' or '#'"),
        ],
    )
    def test_bad_location(self, written: str, fragment: str) -> None:
        problem = only_problem(f"storage:\n  blobs: '{written}'\n" + PIP)
        assert (problem.line, problem.key) == (2, "storage.blobs")
        assert fragment in problem.message

    def test_s3_settings(self) -> None:
        config = parse(
            """\
            storage:
              blobs: s3://wheels/proxy
              s3: {endpoint_url: "http://minio.example:9000/", region: eu-west-1, addressing_style: path}
            """
            + PIP
        )
        assert config.storage.s3 == S3Config("http://minio.example:9000", "eu-west-1", "path")
        assert parse("storage: {blobs: s3://wheels}\n" + PIP).storage.s3 == S3Config(None, None, "auto")

    @pytest.mark.parametrize(
        ("section", "line", "key", "fragment"),
        [
            ("s3: {endpoint_url: minio:9000}", 3, "storage.s3.endpoint_url", "is not an http(s) URL"),
            ("s3: {endpoint_url: 'http://minio:9000/wheels'}", 3, "storage.s3.endpoint_url", "has a path"),
            ("s3: {addressing_style: paths}", 3, "storage.s3.addressing_style", 'did you mean "path"'),
            ("s3: {region: 1}", 3, "storage.s3.region", "expected a string"),
            ("s3: {endpoint: 'http://minio:9000'}", 3, "storage.s3.endpoint", 'did you mean "endpoint_url"'),
            ("s3: [http://minio:9000]", 3, "storage.s3", "expected a mapping"),
        ],
    )
    def test_bad_s3_settings(self, section: str, line: int, key: str, fragment: str) -> None:
        problem = only_problem(f"storage:\n  blobs: s3://wheels/proxy\n  {section}\n" + PIP)
        assert (problem.line, problem.key) == (line, key)
        assert fragment in problem.message

    def test_s3_settings_need_an_s3_store(self) -> None:
        problem = only_problem("storage:\n  blobs: var/blobs\n  s3: {region: eu-west-1}\n" + PIP)
        assert (problem.line, problem.key) == (3, "storage.s3")
        assert "storage.blobs is a folder" in problem.message and "s3://bucket/prefix" in problem.message


class TestIndexUrls:
    @pytest.mark.parametrize(
        ("written", "expected"),
        [
            ("http://up.example/simple", "http://up.example/simple/"),
            ("http://up.example/simple/", "http://up.example/simple/"),
            ("https://up.example", "https://up.example/"),
            ("https://up.example:8443/a/b?token=x", "https://up.example:8443/a/b/?token=x"),
            ("https://user:pw@up.example/simple", "https://user:pw@up.example/simple/"),
        ],
    )
    @pytest.mark.parametrize("kind", ["simple", "pulp"])
    def test_trailing_slash_is_added(self, written: str, expected: str, kind: str) -> None:
        assert parse(f"indexes: [{{name: up, url: '{written}', kind: {kind}}}]").indexes[0].url == expected

    def test_pip_is_kept_literally(self) -> None:
        assert parse(PIP).indexes[0].url == "pip"

    def test_folder_url_is_an_absolute_directory_without_slash(self, tmp_path: Path) -> None:
        (tmp_path / "wheels").mkdir()
        config = parse("indexes: [{name: local, url: wheels/, kind: folder}]", tmp_path)
        assert config.indexes[0].url == str(tmp_path / "wheels")


class TestEnvironment:
    def test_admin_token_from_the_environment_wins(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("INDEX_PROXY_ADMIN_TOKEN", "from-env")
        assert parse("server: {admin_token: from-file}\n" + PIP).server.admin_token == "from-env"
        assert parse(PIP).server.admin_token == "from-env"
        assert default_config().server.admin_token == "from-env"

    def test_empty_admin_token_variable_is_ignored(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("INDEX_PROXY_ADMIN_TOKEN", "")
        assert parse("server: {admin_token: from-file}\n" + PIP).server.admin_token == "from-file"

    def test_environ_can_be_passed_explicitly(self) -> None:
        config = parse_config(PIP, environ={"INDEX_PROXY_ADMIN_TOKEN": "given"})
        assert config.server.admin_token == "given"

    def test_password_env_is_read_at_load(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("PULP_PASSWORD", "from-env")
        index = parse(
            """\
            indexes:
              - {name: internal, url: "http://pulp.example/", username: ci, password_env: PULP_PASSWORD}
            """
        ).indexes[0]
        assert (index.username, index.password) == ("ci", "from-env")

    def test_missing_password_env_variable(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("PULP_PASSWORD", raising=False)
        problem = only_problem(
            """\
            indexes:
              - name: internal
                url: "http://pulp.example/"
                username: ci
                password_env: PULP_PASSWORD
            """
        )
        assert (problem.line, problem.key) == (5, "indexes[0].password_env")
        assert 'environment variable "PULP_PASSWORD" is not set' in problem.message

    def test_password_and_password_env_together(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("PULP_PASSWORD", "x")
        problem = only_problem(
            """\
            indexes:
              - name: internal
                url: "http://pulp.example/"
                username: ci
                password: y
                password_env: PULP_PASSWORD
            """
        )
        assert (problem.line, problem.key) == (6, "indexes[0].password_env")
        assert "not both" in problem.message

    def test_password_needs_a_username(self) -> None:
        problem = only_problem("indexes:\n  - {name: a, url: 'http://a.example/', password: 1234}\n")
        assert (problem.line, problem.key) == (2, "indexes[0].password")
        assert "needs a username" in problem.message


class TestHardware:
    def test_features_are_lowercased_and_deduplicated(self) -> None:
        config = parse("profiles: {box: {cpu_features: [AVX2, Fma, avx2, avx512_vnni]}}\n" + PIP)
        assert config.profiles["box"].cpu_features == ("avx2", "fma", "avx512_vnni")

    @pytest.mark.parametrize(
        ("written", "expected"),
        [("'12.1'", "12.1"), ("12.1", "12.1"), ("12.10", "12.10"), ('"11.8"', "11.8"), ("null", None)],
    )
    def test_cuda(self, written: str, expected: str | None) -> None:
        assert parse(f"profiles: {{box: {{cuda: {written}}}}}\n" + PIP).profiles["box"].cuda == expected

    @pytest.mark.parametrize("written", ["x86_64", "x86_64_v2", "X86_64_V3", "x86-64-v4"])
    def test_cpu_levels(self, written: str) -> None:
        level = parse(f"profiles: {{box: {{cpu_level: {written}}}}}\n" + PIP).profiles["box"].cpu_level
        assert level == written.lower().replace("-", "_")

    def test_empty_hardware_still_marks_a_variant_source(self) -> None:
        config = parse("indexes: [{name: v, url: 'http://v.example/', hardware: {}}, {name: p, url: pip}]")
        assert config.indexes[0].hardware == HardwareSpec()
        assert config.indexes[1].hardware is None

    def test_empty_profile_is_a_generic_machine(self) -> None:
        assert parse("profiles: {plain: null, other: {}}\n" + PIP).profiles == {
            "plain": HardwareSpec(),
            "other": HardwareSpec(),
        }


class TestGlobMatches:
    @pytest.mark.parametrize(
        ("patterns", "name", "expected"),
        [
            # Names and patterns are both compared PEP 503-normalized.
            (["foo-bar-*"], "Foo.Bar_baz", True),
            (["FOO_BAR.*"], "foo-bar-baz", True),
            (["foo__bar"], "Foo-Bar", True),
            (["acme-*"], "acme", False),
            (["acme*"], "acme", True),
            (["acme-*"], "ACME.utils", True),
            (["acme-?"], "acme-x", True),
            (["acme-?"], "acme-xy", False),
            (["acme-[abc]*"], "acme-beta", True),
            (["acme-[!abc]*"], "acme-beta", False),
            (["*"], "anything", True),
            (["torch", "torchvision"], "TorchVision", True),
            (["torch"], "torchvision", False),
            ([], "anything", False),
        ],
    )
    def test_table(self, patterns: list[str], name: str, expected: bool) -> None:
        assert glob_matches(patterns, name) is expected

    def test_stored_patterns_are_normalized(self) -> None:
        config = parse("indexes: [{name: a, url: pip, owns: ['Acme_Lib.*', 'x**y'], only: ['Tensor_Flow']}]")
        assert config.indexes[0].owns == ("acme-lib-*", "x*y")
        assert config.indexes[0].only == ("tensor-flow",)
        assert glob_matches(config.indexes[0].owns, "ACME.LIB.core")


class TestProblemFormat:
    def test_str(self) -> None:
        assert str(ConfigProblem("p.yaml", 3, "server.port", "bad")) == "p.yaml:3: server.port: bad"
        assert str(ConfigProblem("p.yaml", None, "", "unreadable")) == "p.yaml: unreadable"
        assert str(ConfigProblem("p.yaml", 1, "", "syntax")) == "p.yaml:1: syntax"

    def test_error_lists_every_problem_one_per_line(self) -> None:
        with pytest.raises(ConfigError) as info:
            parse("server: {port: 0, host: 1}\nindexes: []\n")
        error = info.value
        assert isinstance(error, ValueError)
        assert len(error.problems) == 3
        assert str(error) == "\n".join(str(problem) for problem in error.problems)
        assert str(error).splitlines()[0].startswith("proxy.yaml:1: server.port: ")

    def test_unreadable_file(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError) as info:
            load_config(tmp_path / "missing.yaml")
        [problem] = info.value.problems
        assert (problem.file, problem.line, problem.key) == (str(tmp_path / "missing.yaml"), None, "")
        assert "cannot read" in problem.message

    def test_load_config_names_the_file_as_given(self, tmp_path: Path) -> None:
        path = tmp_path / "proxy.yaml"
        path.write_text("indexes:\n  - {name: a, url: pip, kind: pulp}\n")
        with pytest.raises(ConfigError) as info:
            load_config(path)
        assert str(info.value).startswith(f"{path}:2: indexes[0].url: ")


def test_several_problems_are_reported_together_in_file_order() -> None:
    text = """\
    server:
      port: abc
      hots: 0.0.0.0
    indexes:
      - name: internal
        url: ftp://pulp.example/
        owns: ["acme-*"]
      - name: internal
        url: pip
        owns: ["acme-*", ""]
        hardware: {cpu_level: x86_64_v9, cuda: "12"}
    monitor:
      - {index: interna, versions: "=>2"}
    """
    assert places(text) == [
        (2, "server.port"),
        (3, "server.hots"),
        (6, "indexes[0].url"),
        (8, "indexes[1].name"),
        (10, "indexes[1].owns[0]"),
        (10, "indexes[1].owns[1]"),
        (11, "indexes[1].hardware.cpu_level"),
        (11, "indexes[1].hardware.cuda"),
        (13, "monitor[0].index"),
        (13, "monitor[0].versions"),
    ]


class TestDocumentProblems:
    def test_yaml_syntax_error(self) -> None:
        problem = only_problem("indexes:\n  - name: a\n   url: pip\n")
        assert (problem.line, problem.key) == (3, "")
        assert problem.message.startswith("invalid YAML: ")
        assert "indentation" in problem.message

    def test_tab_indentation(self) -> None:
        problem = only_problem("indexes:\n\t- {name: a, url: pip}\n")
        assert problem.line == 2
        assert "not tabs" in problem.message

    def test_unclosed_quote(self) -> None:
        assert only_problem("indexes:\n  - name: 'a\n    url: pip\n").line == 4

    def test_two_documents(self) -> None:
        problem = only_problem(PIP + "---\n" + PIP)
        assert problem.line == 2
        assert "single document" in problem.message

    @pytest.mark.parametrize("text", ["- a\n- b\n", "just text\n", "42\n"])
    def test_top_level_not_a_mapping(self, text: str) -> None:
        problem = only_problem(text)
        assert (problem.line, problem.key) == (1, "")
        assert "the top level must be a mapping of sections" in problem.message

    @pytest.mark.parametrize("text", ["", "# only a comment\n"])
    def test_empty_file(self, text: str) -> None:
        problem = only_problem(text)
        assert (problem.line, problem.key) == (None, "indexes")
        assert "missing required key" in problem.message

    def test_missing_indexes(self) -> None:
        problem = only_problem("server: {port: 8000}\n")
        assert (problem.line, problem.key) == (1, "indexes")

    def test_empty_indexes(self) -> None:
        problem = only_problem("indexes: []\n")
        assert (problem.line, problem.key) == (1, "indexes")
        assert "at least one index" in problem.message

    @pytest.mark.parametrize("value", ["null", "pip", "{name: a}"])
    def test_indexes_not_a_list(self, value: str) -> None:
        problem = only_problem(f"indexes: {value}\n")
        assert (problem.line, problem.key) == (1, "indexes")
        assert "expected a list of indexes" in problem.message

    def test_duplicate_key(self) -> None:
        problem = only_problem("server:\n  port: 1\n  port: 2\n" + PIP)
        assert (problem.line, problem.key) == (3, "server.port")
        assert "duplicate key (first at line 2)" in problem.message

    def test_section_of_the_wrong_shape(self) -> None:
        problem = only_problem("server: [8000]\n" + PIP)
        assert (problem.line, problem.key) == (1, "server")
        assert "expected a mapping of host, port" in problem.message


class TestUnknownKeys:
    @pytest.mark.parametrize(
        ("text", "line", "key", "suggestion"),
        [
            ("indexs: []\n" + PIP, 1, "indexs", "indexes"),
            ("server: {prot: 1}\n" + PIP, 1, "server.prot", "port"),
            ("storage: {blob: x}\n" + PIP, 1, "storage.blob", "blobs"),
            ("indexes:\n  - name: a\n    url: pip\n    onwns: []\n", 4, "indexes[0].onwns", "owns"),
            ("indexes:\n  - {name: a, url: pip, hardware: {cuda_version: '12.1'}}\n", 2,
             "indexes[0].hardware.cuda_version", "cuda"),
            ("profiles: {box: {cpu_feature: [avx2]}}\n" + PIP, 1, "profiles.box.cpu_feature", "cpu_features"),
            (PIP + "monitor: [{index: pypi, version: '>=1'}]\n", 2, "monitor[0].version", "versions"),
        ],
    )  # fmt: skip
    def test_unknown_key_with_suggestion(self, text: str, line: int, key: str, suggestion: str) -> None:
        problem = only_problem(text)
        assert (problem.line, problem.key) == (line, key)
        assert problem.message.startswith(f'unknown key; did you mean "{suggestion}"?')
        assert "(valid keys: " in problem.message

    def test_unknown_key_without_close_match(self) -> None:
        problem = only_problem("colour: blue\n" + PIP)
        assert problem.key == "colour"
        assert problem.message == (
            "unknown key (valid keys: server, storage, indexes, profiles, monitor, prescriptions)"
        )


class TestServerProblems:
    @pytest.mark.parametrize(
        ("value", "key"),
        [
            ("port: abc", "server.port"),
            ("port: 0", "server.port"),
            ("port: 65536", "server.port"),
            ("port: 80.5", "server.port"),
            ("port: true", "server.port"),
            ("page_ttl: -1", "server.page_ttl"),
            ("page_ttl: ten", "server.page_ttl"),
            ("page_ttl: .nan", "server.page_ttl"),
            ("host: [a]", "server.host"),
            ("host: ''", "server.host"),
            ("admin_token: {a: b}", "server.admin_token"),
        ],
    )
    def test_wrong_type_or_range(self, value: str, key: str) -> None:
        problem = only_problem(f"server:\n  {value}\n" + PIP)
        assert (problem.line, problem.key) == (2, key)
        assert "e.g." in problem.message

    def test_port_message(self) -> None:
        problem = only_problem("server:\n  port: abc\n" + PIP)
        assert problem.message == 'expected a whole number from 1 to 65535, got "abc"; e.g. 8000'

    @pytest.mark.parametrize("value", ["/proxy", "packages.example", "ftp://packages.example", "https://"])
    def test_public_url_must_be_absolute_http(self, value: str) -> None:
        problem = only_problem(f"server:\n  public_url: '{value}'\n" + PIP)
        assert (problem.line, problem.key) == (2, "server.public_url")
        assert "absolute URL" in problem.message

    def test_default_profile_must_name_a_profile(self) -> None:
        problem = only_problem(
            """\
            profiles:
              avx2-box: {cpu_features: [avx2]}
            server:
              default_profile: avx2box
            """
            + PIP
        )
        assert (problem.line, problem.key) == (4, "server.default_profile")
        assert 'no profile is named "avx2box"; did you mean "avx2-box"?' in problem.message


class TestIndexProblems:
    def test_missing_name_and_url(self) -> None:
        assert places("indexes:\n  - kind: simple\n") == [(2, "indexes[0].name"), (2, "indexes[0].url")]

    def test_null_url(self) -> None:
        problem = only_problem("indexes:\n  - name: a\n    url:\n")
        assert (problem.line, problem.key) == (3, "indexes[0].url")
        assert "a value is required" in problem.message

    def test_item_not_a_mapping(self) -> None:
        problem = only_problem("indexes:\n  - pip\n")
        assert (problem.line, problem.key) == (2, "indexes[0]")

    @pytest.mark.parametrize("name", ["-internal", "a b", "_x", "ä", "''"])
    def test_bad_name(self, name: str) -> None:
        problem = only_problem(f"indexes:\n  - name: {name}\n    url: pip\n")
        assert (problem.line, problem.key) == (2, "indexes[0].name")

    def test_duplicate_names(self) -> None:
        problem = only_problem(
            """\
            indexes:
              - {name: pypi, url: pip}
              - {name: other, url: "http://o.example/"}
              - {name: pypi, url: "http://p.example/"}
            """
        )
        assert (problem.line, problem.key) == (4, "indexes[2].name")
        assert problem.message == '"pypi" is already the name of indexes[0] (line 2); names must be unique'

    def test_bad_kind(self) -> None:
        problem = only_problem("indexes:\n  - {name: a, url: 'http://a.example/', kind: pulpp}\n")
        assert (problem.line, problem.key) == (2, "indexes[0].kind")
        assert problem.message == 'unknown kind "pulpp"; did you mean "pulp"? (one of simple, pulp, folder)'

    @pytest.mark.parametrize(
        ("url", "fragment"),
        [
            ("ftp://a.example/simple/", "is not an http(s) URL"),
            ("a.example/simple/", "is not an http(s) URL"),
            ("/srv/simple", "is not an http(s) URL"),
            ("http:///simple/", "has no host"),
            ("http://a.example:port/", "has an invalid port"),
        ],
    )
    def test_bad_url(self, url: str, fragment: str) -> None:
        problem = only_problem(f"indexes:\n  - name: a\n    url: '{url}'\n")
        assert (problem.line, problem.key) == (3, "indexes[0].url")
        assert fragment in problem.message
        assert "pip for pip's index" in problem.message

    def test_pip_is_only_for_kind_simple(self) -> None:
        problem = only_problem("indexes:\n  - name: a\n    kind: pulp\n    url: pip\n")
        assert (problem.line, problem.key) == (4, "indexes[0].url")

    def test_folder_must_exist(self, tmp_path: Path) -> None:
        problem = only_problem("indexes:\n  - {name: a, kind: folder, url: missing}\n", tmp_path)
        assert (problem.line, problem.key) == (2, "indexes[0].url")
        assert f'"{tmp_path / "missing"}" does not exist' in problem.message

    def test_folder_must_be_a_directory(self, tmp_path: Path) -> None:
        (tmp_path / "file.txt").write_text("")
        problem = only_problem("indexes:\n  - {name: a, kind: folder, url: file.txt}\n", tmp_path)
        assert "is not a directory" in problem.message

    def test_folder_is_not_an_http_url(self) -> None:
        problem = only_problem("indexes:\n  - {name: a, kind: folder, url: 'http://a.example/'}\n")
        assert "kind folder needs a directory path" in problem.message

    @pytest.mark.parametrize(
        ("value", "key"),
        [
            ("ttl: -5", "indexes[0].ttl"),
            ("timeout: 0", "indexes[0].timeout"),
            ("timeout: -1.5", "indexes[0].timeout"),
            ("retries: 11", "indexes[0].retries"),
            ("retries: -1", "indexes[0].retries"),
            ("retries: 1.5", "indexes[0].retries"),
            ("owns: acme-*", "indexes[0].owns"),
            ("owns: [[acme]]", "indexes[0].owns[0]"),
            ("only: {a: b}", "indexes[0].only"),
            ("hardware: [avx2]", "indexes[0].hardware"),
            ("username: [a]", "indexes[0].username"),
        ],
    )
    def test_wrong_type_or_range(self, value: str, key: str) -> None:
        problem = only_problem(f"indexes:\n  - name: a\n    url: pip\n    {value}\n")
        assert (problem.line, problem.key) == (4, key)


class TestGlobProblems:
    @pytest.mark.parametrize(
        ("pattern", "fragment"),
        [
            ("''", "must not be empty"),
            ("'acme lib'", '" " cannot occur in a project name'),
            ("'acme/*'", '"/" cannot occur in a project name'),
            ("'acme+'", '"+" cannot occur in a project name'),
            ("'acme-[ab'", 'has a "[" that is never closed'),
            ("'acme-ab]'", 'has a "]" without a "["'),
            ("'acme-[]'", "a [...] class must list name characters"),
            ("'acme-[!]'", "a [...] class must list name characters"),
            ("'acme-[a*]'", "a [...] class must list name characters"),
            ("'!acme'", '"!" only negates at the start of a [...] class'),
        ],
    )
    @pytest.mark.parametrize("field", ["owns", "only"])
    def test_bad_glob(self, pattern: str, fragment: str, field: str) -> None:
        problem = only_problem(
            f"indexes:\n  - name: a\n    url: pip\n    {field}:\n      - ok-*\n      - {pattern}\n"
        )
        assert (problem.line, problem.key) == (6, f"indexes[0].{field}[1]")
        assert fragment in problem.message

    def test_bad_glob_in_monitor(self) -> None:
        problem = only_problem(PIP + "monitor:\n  - {index: pypi, projects: ['a b']}\n")
        assert (problem.line, problem.key) == (3, "monitor[0].projects[0]")


class TestOwnershipConflicts:
    def test_same_pattern_twice(self) -> None:
        text = """\
        indexes:
          - name: internal
            url: http://pulp.example/simple/
            owns: ["acme-*"]
          - name: public
            url: pip
            owns: ["acme-*"]
        """
        assert str(only_problem(text)) == (
            'proxy.yaml:7: indexes[1].owns[0]: "acme-*" is already owned by index "internal"'
            " (indexes[0].owns[0], line 4); a name may be owned by one index only — remove one of them"
        )

    def test_patterns_are_compared_normalized(self) -> None:
        text = """\
        indexes:
          - {name: a, url: pip, owns: ["Acme_Lib"]}
          - {name: b, url: "http://b.example/", owns: ["acme.lib"]}
        """
        problem = only_problem(text)
        assert (problem.line, problem.key) == (3, "indexes[1].owns[0]")
        assert '"acme.lib" is already owned by index "a"' in problem.message

    def test_name_inside_an_earlier_glob(self) -> None:
        text = """\
        indexes:
          - {name: internal, url: pip, owns: ["acme-*"]}
          - {name: public, url: "http://b.example/", owns: ["Acme-Utils"]}
        """
        assert only_problem(text).message == (
            '"Acme-Utils" is already owned by index "internal" (indexes[0].owns[0], line 2) through "acme-*";'
            " a name may be owned by one index only — remove one of them"
        )

    def test_glob_over_an_earlier_name(self) -> None:
        text = """\
        indexes:
          - {name: internal, url: pip, owns: ["acme-utils"]}
          - {name: public, url: "http://b.example/", owns: ["acme-*"]}
        """
        problem = only_problem(text)
        assert (problem.line, problem.key) == (3, "indexes[1].owns[0]")
        assert 'owned by index "internal"' in problem.message
        assert 'both match e.g. "acme-utils"' in problem.message

    @pytest.mark.parametrize(
        ("first", "second", "example"),
        [
            ("acme-*", "acme-t*", "acme-t"),
            ("acme-*", "*-plugin", "acme-plugin"),
            ("*", "numpy", "numpy"),
            ("acme-?", "acme-[xyz]", "acme-x"),
            ("a[0-9]*", "*[5-7]b", "a5b"),
        ],
    )
    def test_overlapping_globs(self, first: str, second: str, example: str) -> None:
        text = f"""\
        indexes:
          - {{name: one, url: pip, owns: ["{first}"]}}
          - {{name: two, url: "http://b.example/", owns: ["{second}"]}}
        """
        problem = only_problem(text)
        assert (problem.line, problem.key) == (3, "indexes[1].owns[0]")
        assert 'index "one" (indexes[0].owns[0], line 2)' in problem.message
        assert f'"{example}"' in problem.message

    @pytest.mark.parametrize(
        ("first", "second"),
        [
            ("acme-*", "beta-*"),
            ("acme-*", "acme"),
            ("a?b", "ab"),
            ("acme-[ab]", "acme-[cd]"),
            ("acme-[!x]", "acme-x"),
            ("*-x", "*-y"),
        ],
    )
    def test_disjoint_globs_are_fine(self, first: str, second: str) -> None:
        config = parse(
            f"""\
            indexes:
              - {{name: one, url: pip, owns: ["{first}"]}}
              - {{name: two, url: "http://b.example/", owns: ["{second}"]}}
            """
        )
        assert len(config.indexes) == 2

    def test_overlap_within_one_index_is_fine(self) -> None:
        assert (
            parse("indexes: [{name: a, url: pip, owns: ['acme-*', 'acme-utils', 'acme-*']}]").indexes[0].owns
        )

    def test_each_pair_of_indexes_is_reported_once(self) -> None:
        text = """\
        indexes:
          - {name: a, url: pip, owns: ["x-*"]}
          - {name: b, url: "http://b.example/", owns: ["y-*"]}
          - {name: c, url: "http://c.example/", owns: ["*"]}
        """
        found = problems(text)
        assert [(problem.line, problem.key) for problem in found] == [
            (4, "indexes[2].owns[0]"),
            (4, "indexes[2].owns[0]"),
        ]
        assert 'index "a"' in found[0].message and 'index "b"' in found[1].message


class TestHardwareProblems:
    @pytest.mark.parametrize("level", ["x86_64_v5", "haswell", "v3"])
    def test_unknown_cpu_level(self, level: str) -> None:
        problem = only_problem(
            f"indexes:\n  - name: a\n    url: pip\n    hardware:\n      cpu_level: {level}\n"
        )
        assert (problem.line, problem.key) == (5, "indexes[0].hardware.cpu_level")
        assert "(one of x86_64, x86_64_v2, x86_64_v3, x86_64_v4)" in problem.message

    @pytest.mark.parametrize("cuda", ["12", '"12"', '"12.1.0"', '"v12.1"', '"12.x"', "[12, 1]"])
    def test_bad_cuda(self, cuda: str) -> None:
        problem = only_problem(f"profiles:\n  box:\n    cuda: {cuda}\n" + PIP)
        assert (problem.line, problem.key) == (3, "profiles.box.cuda")

    def test_bad_cpu_feature(self) -> None:
        problem = only_problem("profiles:\n  box:\n    cpu_features: [avx2, 'avx 512']\n" + PIP)
        assert (problem.line, problem.key) == (3, "profiles.box.cpu_features[1]")

    def test_bad_profile_name(self) -> None:
        problem = only_problem("profiles:\n  'a/b': {}\n" + PIP)
        assert (problem.line, problem.key) == (2, "profiles.a/b")

    def test_profiles_not_a_mapping(self) -> None:
        problem = only_problem("profiles: [avx2-box]\n" + PIP)
        assert (problem.line, problem.key) == (1, "profiles")


class TestMonitorProblems:
    def test_index_must_name_an_index(self) -> None:
        problem = only_problem(PIP + "monitor:\n  - {index: pyp}\n")
        assert (problem.line, problem.key) == (3, "monitor[0].index")
        assert problem.message == 'no index is named "pyp"; did you mean "pypi"? (indexes: pypi)'

    def test_index_is_required(self) -> None:
        problem = only_problem(PIP + "monitor:\n  - {projects: ['*']}\n")
        assert (problem.line, problem.key) == (3, "monitor[0].index")

    @pytest.mark.parametrize("versions", ['"=>2"', '"2"', '"latest"', '""'])
    def test_versions_must_be_a_specifier(self, versions: str) -> None:
        problem = only_problem(PIP + f"monitor:\n  - index: pypi\n    versions: {versions}\n")
        assert (problem.line, problem.key) == (4, "monitor[0].versions")

    def test_empty_projects(self) -> None:
        problem = only_problem(PIP + "monitor:\n  - {index: pypi, projects: []}\n")
        assert (problem.line, problem.key) == (3, "monitor[0].projects")
        assert "monitors nothing" in problem.message

    def test_monitor_not_a_list(self) -> None:
        problem = only_problem(PIP + "monitor: {index: pypi}\n")
        assert (problem.line, problem.key) == (2, "monitor")


def test_prescriptions_must_be_a_list_of_strings() -> None:
    assert places(PIP + "prescriptions: rules\n") == [(2, "prescriptions")]
    assert places(PIP + "prescriptions: [rules, 3]\n") == [(2, "prescriptions[1]")]


class TestPulpKeys:
    def test_api_url_and_repository(self) -> None:
        config = parse(
            """\
            indexes:
              - name: internal
                url: http://pulp.example/pypi/internal/simple/
                kind: pulp
                api_url: http://pulp.example/pulp/api/v3
                repository: internal
            """
        )
        index = config.indexes[0]
        assert (index.api_url, index.repository) == ("http://pulp.example/pulp/api/v3/", "internal")
        assert index.watches_pulp

    def test_pulp_without_api_is_a_plain_index(self) -> None:
        index = parse("indexes:\n  - {name: a, url: 'http://a.example/', kind: pulp}\n").indexes[0]
        assert (index.api_url, index.repository, index.watches_pulp) == (None, None, False)

    def test_api_url_on_a_simple_index(self) -> None:
        found = problems(
            "indexes:\n  - name: a\n    url: 'http://a.example/'\n    api_url: 'http://a.example/pulp/api/v3/'\n"
            "    repository: r\n"
        )
        assert [(p.line, p.key) for p in found] == [(4, "indexes[0].api_url"), (5, "indexes[0].repository")]
        assert all("add kind: pulp" in p.message for p in found)

    def test_repository_without_api_url(self) -> None:
        problem = only_problem(
            "indexes:\n  - name: a\n    url: 'http://a.example/'\n    kind: pulp\n    repository: r\n"
        )
        assert (problem.line, problem.key) == (5, "indexes[0].repository")
        assert "needs api_url too" in problem.message

    def test_api_url_not_http(self) -> None:
        problem = only_problem(
            "indexes:\n  - name: a\n    url: 'http://a.example/'\n    kind: pulp\n"
            "    api_url: pulp.example/api\n    repository: r\n"
        )
        assert (problem.line, problem.key) == (5, "indexes[0].api_url")
        assert "REST API root" in problem.message
