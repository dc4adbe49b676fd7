"""The advice part of a resolve request: recommendation type, labels, library usage, runtime facts.

Reads what a client sends beside its requirements and machine into the rules' view of the request
(:class:`prescriptions.context.RequestContext`), with the same kind of errors as the rest of the
request (the key at fault, what was expected).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from prescriptions.context import RequestContext, RuntimeFacts
from prescriptions.model import RECOMMENDATION_TYPES
from resolver.environment import Environment

__all__ = ["ADVICE_KEYS", "AdviceRequest", "BadAdvice", "read_advice"]

ADVICE_KEYS = (
    "recommendation",
    "recommendation_type",
    "labels",
    "library_usage",
    "runtime_environment",
    "search",
)

_RUNTIME_KEYS = {
    "operating_system": dict,
    "cudnn_version": str,
    "mkl_version": str,
    "openblas_version": str,
    "openmpi_version": str,
    "cpu_family": int,
    "cpu_model": int,
    "gpu_model": str,
    "base_image": str,
    "abi": list,
    "rpm_packages": list,
    "python_packages": dict,
}

#: The most a request may ask the improvement search to take.
MAX_BUDGET_SECONDS = 30.0


class BadAdvice(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class AdviceRequest:
    context: RequestContext
    budget_seconds: float | None
    seed: int
    max_trials: int


def read_advice(
    payload: Mapping[str, Any], environment: Environment, *, authenticated: bool
) -> AdviceRequest:
    recommendation = payload.get("recommendation_type", payload.get("recommendation", "latest"))
    if recommendation not in RECOMMENDATION_TYPES:
        raise BadAdvice(
            f"recommendation_type: {recommendation!r} is not one of {', '.join(RECOMMENDATION_TYPES)}"
        )
    labels = payload.get("labels") or {}
    if not isinstance(labels, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
    ):
        raise BadAdvice('labels: expected an object of strings, e.g. {"pypi-index": "solely"}')
    usage = payload.get("library_usage")
    library_usage: dict[str, tuple[str, ...]] | None = None
    if usage is not None:
        if not isinstance(usage, Mapping) or not all(
            isinstance(k, str) and isinstance(v, list) and all(isinstance(s, str) for s in v)
            for k, v in usage.items()
        ):
            raise BadAdvice(
                'library_usage: expected {"module": ["module.name", ...]}'
                " (what `index-proxy lock --scan` sends)"
            )
        library_usage = {k: tuple(v) for k, v in usage.items()}
    runtime = _runtime(payload.get("runtime_environment") or {}, environment)
    search = payload.get("search") or {}
    if not isinstance(search, Mapping) or set(search) - {"budget_seconds", "seed", "max_trials"}:
        raise BadAdvice("search: expected {budget_seconds?, seed?, max_trials?}")
    budget = search.get("budget_seconds")
    if budget is not None and (
        not isinstance(budget, int | float)
        or isinstance(budget, bool)
        or not 0 <= budget <= MAX_BUDGET_SECONDS
    ):
        raise BadAdvice(
            f"search.budget_seconds: expected a number of seconds from 0 to {MAX_BUDGET_SECONDS:g}"
        )
    seed = search.get("seed", 0)
    max_trials = search.get("max_trials", 200)
    for key, value in (("seed", seed), ("max_trials", max_trials)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise BadAdvice(f"search.{key}: expected a whole number, 0 or more")
    context = RequestContext(
        recommendation_type=recommendation,
        runtime=runtime,
        labels=dict(labels),
        library_usage=library_usage,
        authenticated=authenticated,
    )
    return AdviceRequest(context, None if budget is None else float(budget), seed, max_trials)


def _runtime(data: Any, environment: Environment) -> RuntimeFacts:
    if not isinstance(data, Mapping):
        raise BadAdvice("runtime_environment: expected an object")
    unknown = set(data) - set(_RUNTIME_KEYS)
    if unknown:
        raise BadAdvice(
            f"runtime_environment: unknown keys {', '.join(sorted(unknown))}"
            f" (known: {', '.join(_RUNTIME_KEYS)})"
        )
    for key, kind in _RUNTIME_KEYS.items():
        value = data.get(key)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise BadAdvice(f"runtime_environment.{key}: expected a {kind.__name__}")
    markers = environment.markers
    operating_system = data.get("operating_system") or {}
    machine = markers.get("platform_machine", "")
    return RuntimeFacts(
        operating_system=operating_system.get("name") or markers.get("platform_system", "").lower() or None,
        operating_system_version=operating_system.get("version"),
        python_version=markers.get("python_version"),
        cuda_version=environment.cuda,
        cudnn_version=data.get("cudnn_version"),
        mkl_version=data.get("mkl_version"),
        openblas_version=data.get("openblas_version"),
        openmpi_version=data.get("openmpi_version"),
        cpu_family=data.get("cpu_family"),
        cpu_model=data.get("cpu_model"),
        cpu_flags=environment.cpu_features,
        # A usable CUDA means a GPU even when the client did not name its model.
        gpu_model=data.get("gpu_model") or ("unknown" if environment.cuda else None),
        platform=f"{markers.get('sys_platform', '')}-{machine}" if machine else None,
        base_image=data.get("base_image"),
        abi=frozenset(data["abi"]) if data.get("abi") is not None else None,
        rpm_packages=frozenset(data["rpm_packages"]) if data.get("rpm_packages") is not None else None,
        python_packages=dict(data["python_packages"]) if data.get("python_packages") is not None else None,
    )
