"""Prescriptions applied to a request: should_include, vetoes in the solver, scores, annotations."""

from __future__ import annotations

from typing import Any

import pytest
from packaging.version import Version
from resolver_cases.driver import resolve

from prescriptions import UnitIndex, compile_units, parse
from prescriptions.context import RequestContext, RuntimeFacts
from prescriptions.pipeline import Pipeline, ResolvedGraph, ResolvedPin


def pipeline(text: str, context: RequestContext | None = None, **kwargs: Any) -> Pipeline:
    units, problems = parse(text)
    assert not problems, problems
    return Pipeline(UnitIndex(compile_units(units)), context or RequestContext(), **kwargs)


def graph(
    pins: dict[str, str], introduced: dict[str, set[str]] | None = None, index: str = "public"
) -> ResolvedGraph:
    return ResolvedGraph(
        {name: ResolvedPin(version, index, None) for name, version in pins.items()},
        {name: frozenset(who) for name, who in (introduced or {}).items()},
    )


H5PY_STEP = """
units:
  steps:
  - name: TensorFlow21H5pyStep
    type: step
    should_include: {adviser_pipeline: true}
    match:
      package_version: {name: h5py, version: ">=3"}
      state: {resolved_dependencies: [{name: tensorflow, version: "~=2.1.0"}]}
    run:
      not_acceptable: h5py>=3 breaks TensorFlow 2.1
      stack_info: [{type: WARNING, message: h5py 3 breaks TF 2.1, link: "https://example.org/i/1"}]
"""

INDEX = {
    "tensorflow": {"2.1.0": {"requires": ["h5py"]}, "2.2.0": {"requires": ["h5py<3"]}},
    "h5py": {"2.10.0": {}, "3.1.0": {}},
    "app": {"1.0": {"requires": ["tensorflow~=2.1.0"]}},
}


def test_a_step_veto_becomes_a_solver_veto() -> None:
    rules = pipeline(H5PY_STEP)
    pins = resolve(INDEX, ["app", "h5py"], vetoes=rules.vetoes_for).resolution.pins
    assert pins["h5py"] == "2.10.0"
    failure = resolve(INDEX, ["app", "h5py>=3"], vetoes=rules.vetoes_for).failure
    assert "h5py>=3 breaks TensorFlow 2.1" in failure.report


def test_units_without_adviser_pipeline_never_register() -> None:
    rules = pipeline(H5PY_STEP.replace("adviser_pipeline: true", "adviser_pipeline: false"))
    assert resolve(INDEX, ["app", "h5py"], vetoes=rules.vetoes_for).resolution.pins["h5py"] == "3.1.0"


GROUP = """
units:
  steps:
  - name: PillowNumpyGroup
    type: step.Group
    should_include: {adviser_pipeline: true}
    match:
      group:
      - package_version: {name: pillow, version: "==8.3.0"}
      - package_version: {name: numpy}
    run: {not_acceptable: Pillow 8.3.0 fails with NumPy arrays}
"""


@pytest.mark.parametrize("requested", [["pillow", "numpy"], ["numpy", "pillow"]])
def test_a_group_veto_holds_whatever_the_order(requested: list[str]) -> None:
    index = {"pillow": {"8.2.0": {}, "8.3.0": {}}, "numpy": {"1.21.0": {}}}
    rules = pipeline(GROUP)
    run = resolve(index, requested, vetoes=rules.vetoes_for)
    assert run.resolution.pins == {"pillow": "8.2.0", "numpy": "1.21.0"}
    assert resolve(index, ["pillow"], vetoes=rules.vetoes_for).resolution.pins == {"pillow": "8.3.0"}


GATED = """
units:
  sieves:
  - name: NoAvx2Sieve
    type: sieve
    should_include:
      adviser_pipeline: true
      runtime_environments: {hardware: [{cpu_flags: {not: [avx2]}}]}
    match: {package_version: {name: tensorflow, index_url: aicoe-avx2}}
    run: {stack_info: [{type: INFO, message: no AVX2 here, link: "https://example.org/i/2"}]}
  - name: NoCudaSieve
    type: sieve
    should_include:
      adviser_pipeline: true
      runtime_environments: {cuda_version: null}
    match: {package_version: {name: tensorflow-gpu}}
    run: {stack_info: []}
  - name: StableOnly
    type: sieve
    should_include: {adviser_pipeline: true, recommendation_types: [stable]}
    match: {package_version: {name: numpy, version: ">=2.0.0rc1"}}
    run: {stack_info: []}
"""


def test_should_include_reads_hardware_cuda_and_recommendation_type() -> None:
    plain = pipeline(GATED, RequestContext(runtime=RuntimeFacts(cpu_flags=frozenset({"sse2"}))))
    assert plain.sieve("tensorflow", "2.4.0", "aicoe-avx2", None) == "removed by UNKNOWN.NoAvx2Sieve"
    assert plain.sieve("tensorflow", "2.4.0", "public", None) is None
    assert plain.sieve("tensorflow-gpu", "2.4.0", "public", None) is not None  # null = no CUDA
    assert plain.sieve("numpy", "2.0.0rc1", "public", None) is None  # latest, not stable

    avx2 = pipeline(
        GATED,
        RequestContext(
            recommendation_type="stable",
            runtime=RuntimeFacts(cpu_flags=frozenset({"avx2"}), cuda_version="12.1"),
        ),
    )
    assert avx2.sieve("tensorflow", "2.4.0", "aicoe-avx2", None) is None
    assert avx2.sieve("tensorflow-gpu", "2.4.0", "public", None) is None
    # Specifiers match pre-releases (Thoth's engine silently skipped them).
    assert avx2.sieve("numpy", "2.0.0rc1", "public", None) is not None


LIBRARY = """
units:
  wraps:
  - name: MktempWrap
    type: wrap
    should_include: {adviser_pipeline: true, library_usage: {tempfile: [tempfile.mktemp]}}
    run: {stack_info: [{type: WARNING, message: tempfile.mktemp is insecure, link: "https://example.org/i/3"}]}
"""


@pytest.mark.parametrize(
    ("usage", "fires"),
    [
        (None, False),
        ({"tempfile": ("tempfile",)}, False),
        # The symbol the rule names is the second one reported: every symbol counts.
        ({"tempfile": ("tempfile.TemporaryDirectory", "tempfile.mktemp")}, True),
    ],
)
def test_library_usage_considers_every_symbol(usage: dict[str, tuple[str, ...]] | None, fires: bool) -> None:
    rules = pipeline(LIBRARY, RequestContext(library_usage=usage))
    notes = rules.annotate(graph({"six": "1.0"})).stack_info
    assert [n.message for n in notes] == (["tempfile.mktemp is insecure"] if fires else [])


SCORES = """
units:
  steps:
  - name: OldNumpyPenalty
    type: step
    should_include: {adviser_pipeline: true}
    match: {package_version: {name: numpy, version: "<=1.18"}}
    run:
      score: -0.1
      justification: [{type: WARNING, message: old numpy, link: "https://example.org/i/4"}]
  - name: Avx2Bonus
    type: step
    should_include: {adviser_pipeline: true}
    match: {package_version: {name: tensorflow, index_url: aicoe-avx2}}
    run: {score: 5}
  pseudonyms:
  - name: TfGpu
    type: pseudonym
    should_include: {adviser_pipeline: true, runtime_environments: {cuda_version: ">=0.0"}}
    match: {package_version: {name: tensorflow}}
    run: {yield: {yield_matched_version: true, package_version: {name: tensorflow-gpu}}}
"""


def test_scores_are_clipped_and_summed_and_pseudonyms_offer_alternatives() -> None:
    cuda = pipeline(SCORES, RequestContext(runtime=RuntimeFacts(cuda_version="12.1")))
    evaluation = cuda.evaluate(graph({"numpy": "1.18.0", "tensorflow": "2.4.0"}, index="aicoe-avx2"))
    assert evaluation.score == pytest.approx(-0.1 + 1.0)
    assert evaluation.contributions == {"numpy": -0.1, "tensorflow": 1.0}
    assert [n.message for n in evaluation.justification] == ["old numpy"]
    (alternative,) = evaluation.alternatives
    assert (alternative.project, alternative.alternative, alternative.version) == (
        "tensorflow",
        "tensorflow-gpu",
        "2.4.0",
    )
    assert alternative.apply("tensorflow>=2; python_version >= '3'") == (
        'tensorflow-gpu==2.4.0; python_version >= "3"'
    )
    cpu = pipeline(SCORES)
    assert cpu.evaluate(graph({"tensorflow": "2.4.0"})).alternatives == ()
    assert cpu.file_score("tensorflow", "2.4.0", "aicoe-avx2", None) == 1.0
    assert cpu.file_score("tensorflow", "2.4.0", "public", None) == 0.0


FROM_PARENT = """
units:
  steps:
  - name: TfScipySkip
    type: step.SkipPackage
    should_include: {adviser_pipeline: true}
    match:
      package_version: {name: scipy}
      state: {package_version_from: [{name: tensorflow, version: ">2.1,<=2.3"}]}
    run: {stack_info: [{type: INFO, message: scipy is not needed by TF, link: "https://example.org/i/5"}]}
  - name: VetoFromParent
    type: step
    should_include: {adviser_pipeline: true}
    match: {package_version: {name: six}, state: {package_version_from: [{name: old}]}}
    run: {not_acceptable: old brings a bad six}
"""


def test_steps_on_who_introduced_a_package_are_learned_from_the_resolution() -> None:
    rules = pipeline(FROM_PARENT)
    evaluation = rules.evaluate(
        graph({"tensorflow": "2.2.0", "scipy": "1.5.0"}, {"scipy": {"tensorflow"}, "tensorflow": {"<root>"}})
    )
    assert evaluation.drop_edges == {("tensorflow", "2.2.0", "scipy")}
    # Introduced by another package too: package_version_from_allow_other is false, so no skip.
    evaluation = rules.evaluate(
        graph({"tensorflow": "2.2.0", "scipy": "1.5.0"}, {"scipy": {"tensorflow", "<root>"}})
    )
    assert evaluation.settled
    evaluation = rules.evaluate(graph({"old": "1.0", "six": "1.0"}, {"six": {"old"}}))
    (veto,) = evaluation.vetoes
    assert sorted(c.text for c in veto.conditions) == ["old==1.0", "six==1.0"]


class Advisory:
    def __init__(self, affected: str) -> None:
        self.id = "PYSEC-0000-1"
        self.aliases = ("CVE-2099-1",)
        self.summary = "bad"
        self.link = "https://example.org/advisory"
        self._affected = Version(affected)

    def affects(self, version: Version) -> bool:
        return version == self._affected


@pytest.mark.parametrize(("kind", "penalty"), [("stable", -0.2), ("performance", -0.2), ("latest", 0.0)])
def test_advisories_are_penalised_by_recommendation_type(kind: str, penalty: float) -> None:
    rules = pipeline(
        "units: {}", RequestContext(recommendation_type=kind), advisories={"Jinja2": [Advisory("2.0")]}
    )
    evaluation = rules.evaluate(graph({"jinja2": "2.0"}))
    assert evaluation.score == pytest.approx(penalty)
    assert evaluation.justification[0].cve_id == "CVE-2099-1"
    assert rules.sieve("jinja2", "2.0", "public", None) is None


def test_security_removes_advised_versions() -> None:
    rules = pipeline(
        "units: {}", RequestContext(recommendation_type="security"), advisories={"jinja2": [Advisory("2.0")]}
    )
    assert rules.sieve("jinja2", "2.0", "public", None) == "removed for security: PYSEC-0000-1 (CVE-2099-1)"
    assert rules.sieve("jinja2", "1.9", "public", None) is None


WRAPS = """
units:
  boots:
  - name: GpuWithoutCuda
    type: boot
    should_include:
      adviser_pipeline: true
      runtime_environments: {hardware: [{gpu_models: {not: [null]}}], cuda_version: null}
    run: {stack_info: [{type: WARNING, message: GPU but no CUDA, link: "https://example.org/i/6"}]}
  wraps:
  - name: TfNotes
    type: wrap.GHReleaseNotes
    should_include: {adviser_pipeline: true}
    match: {state: {resolved_dependencies: [{name: tensorflow}]}}
    run: {release_notes: {organization: tensorflow, repository: tensorflow, tag_version_prefix: v}}
  - name: TfEnv
    type: wrap
    should_include: {adviser_pipeline: true}
    match: {state: {resolved_dependencies: [{name: tensorflow, version: ">=2.5.0"}]}}
    run:
      stack_info: [{type: INFO, message: set TF_ENABLE_ONEDNN_OPTS, link: "https://example.org/i/7"}]
      advised_manifest_changes:
      - {apiVersion: apps/v1, kind: Deployment, patch: {op: add, path: /env/0, value: {name: X, value: "1"}}}
  strides:
  - name: NoSixWithTf
    type: stride
    should_include: {adviser_pipeline: true}
    match: {state: {resolved_dependencies: [{name: tensorflow}, {name: six, version: "<1.10"}]}}
    run: {not_acceptable: old six}
"""


def test_boots_wraps_release_notes_and_strides() -> None:
    rules = pipeline(WRAPS, RequestContext(runtime=RuntimeFacts(gpu_model="A100")))
    assert [n.message for n in rules.boot(["tensorflow"]).notes] == ["GPU but no CUDA"]
    assert pipeline(WRAPS).boot(["tensorflow"]).notes == ()
    annotations = rules.annotate(graph({"tensorflow": "2.6.0"}))
    assert [n.link for n in annotations.justification] == [
        "https://github.com/tensorflow/tensorflow/releases/tag/v2.6.0"
    ]
    assert [n.message for n in annotations.stack_info] == ["set TF_ENABLE_ONEDNN_OPTS"]
    assert annotations.advised_manifest_changes[0]["kind"] == "Deployment"
    assert rules.annotate(graph({"tensorflow": "2.4.0"})).advised_manifest_changes == ()
    index = {"tensorflow": {"2.6.0": {"requires": ["six"]}}, "six": {"1.9.0": {}, "1.16.0": {}}}
    failure = resolve(index, ["tensorflow", "six<1.10"], vetoes=rules.vetoes_for).failure
    assert "old six" in failure.report


def test_units_depending_on_other_units() -> None:
    text = """
units:
  sieves:
  - name: Base
    type: sieve
    should_include: {adviser_pipeline: true, labels: {team: ml}}
    match: {package_version: {name: a}}
    run: {stack_info: []}
  - name: Dependent
    type: sieve
    should_include: {adviser_pipeline: true, dependencies: {sieves: [UNKNOWN.Base]}}
    match: {package_version: {name: b}}
    run: {stack_info: []}
"""
    assert pipeline(text).sieve("b", "1", None, None) is None
    assert pipeline(text, RequestContext(labels={"team": "ml"})).sieve("b", "1", None, None) is not None


SKIPS = """
units:
  sieves:
  - name: SkipTypingBackport
    type: sieve.SkipPackage
    should_include: {adviser_pipeline: true, runtime_environments: {python_version: ">=3.7"}}
    match: {package_name: typing}
    run: {stack_info: []}
  steps:
  - name: SkipEnum34
    type: step.SkipPackage
    should_include: {adviser_pipeline: true, labels: {team: ml}}
    match: {package_version: {name: enum34}}
    run: {stack_info: []}
"""


def test_skipped_projects_follow_each_requests_gates() -> None:
    units, problems = parse(SKIPS)
    assert not problems
    index = UnitIndex(compile_units(units))
    old = RequestContext(runtime=RuntimeFacts(python_version="3.6"))
    new = RequestContext(runtime=RuntimeFacts(python_version="3.11"), labels={"team": "ml"})
    # Asked in turn, so that an answer kept from one request would show in the next.
    for _ in range(2):
        assert Pipeline(index, old).skipped() == frozenset()
        assert Pipeline(index, new).skipped() == {"typing", "enum34"}
        assert Pipeline(index, RequestContext(runtime=RuntimeFacts(python_version="3.11"))).skipped() == {
            "typing"
        }


def test_every_hardware_entry_must_hold_as_in_thoths_engine() -> None:
    text = """
units:
  sieves:
  - name: Avx2AndGpu
    type: sieve
    should_include:
      adviser_pipeline: true
      runtime_environments: {hardware: [{cpu_flags: [avx2]}, {gpu_models: {not: [null]}}]}
    match: {package_version: {name: a}}
    run: {stack_info: []}
"""
    both = RuntimeFacts(cpu_flags=frozenset({"avx2"}), gpu_model="T4")
    assert pipeline(text, RequestContext(runtime=both)).sieve("a", "1", None, None) is not None
    for one in (RuntimeFacts(cpu_flags=frozenset({"avx2"})), RuntimeFacts(gpu_model="T4")):
        assert pipeline(text, RequestContext(runtime=one)).sieve("a", "1", None, None) is None
