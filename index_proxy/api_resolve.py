"""``POST /api/v1/resolve``: requirements and a machine in, lock files and a justification out."""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Mapping, Sequence
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from index_proxy.advice import ADVICE_KEYS, AdviceRequest, BadAdvice, read_advice
from index_proxy.pages import ProjectUnavailable, Undecidable
from index_proxy.resolving import (
    ROOT,
    Advice,
    AdviceOutcome,
    BootRefused,
    NoSolution,
    ResolveOutcome,
    file_path,
    resolve,
)
from index_proxy.services import Services
from prescriptions import UnitIndex
from prescriptions.pipeline import Pipeline
from resolver import ResolutionTooDeep, ResolverOptions
from resolver.environment import Environment, InvalidEnvironment
from resolver.locks import LockedPackage, LockSource, pipfile_lock, pylock_toml, requirements_txt
from resolver.manifests import InvalidManifest, parse_manifest

__all__ = ["FORMATS", "resolve_request"]

FORMATS = ("requirements.txt", "Pipfile.lock", "pylock.toml")
_NO_RULES = UnitIndex(())


class BadRequest(ValueError):
    pass


def _strings(payload: Mapping[str, Any], key: str) -> list[str]:
    value = payload.get(key) or []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise BadRequest(f"{key}: expected a list of PEP 508 requirement strings")
    for position, item in enumerate(value):
        try:
            Requirement(item)
        except InvalidRequirement as error:
            raise BadRequest(f"{key}[{position}]: {error}") from error
    return value


def _read_request(
    payload: Any,
) -> tuple[list[str], list[str], list[str], Environment, list[str], str | None, Mapping[str, Any] | None]:
    if not isinstance(payload, Mapping):
        raise BadRequest("the body must be a JSON object with requirements and environment")
    unknown = set(payload) - {
        "requirements",
        "manifest",
        "constraints",
        "dev_requirements",
        "environment",
        "formats",
        *ADVICE_KEYS,
    }
    if unknown:
        raise BadRequest(f"unknown keys: {', '.join(sorted(unknown))}")
    requirements = _strings(payload, "requirements")
    dev = _strings(payload, "dev_requirements")
    constraints = _strings(payload, "constraints")
    requires_python = None
    pipfile: Mapping[str, Any] | None = None
    manifest = payload.get("manifest")
    if manifest is not None:
        if not isinstance(manifest, Mapping) or manifest.get("format") not in (
            "requirements",
            "pipfile",
            "pyproject",
        ):
            raise BadRequest(
                'manifest: expected {"format": "requirements"|"pipfile"|"pyproject", "text": "..."}'
            )
        if not isinstance(manifest.get("text"), str):
            raise BadRequest("manifest.text: expected the file's text")
        try:
            parsed = parse_manifest(manifest["text"], manifest["format"])
        except InvalidManifest as error:
            raise BadRequest(f"manifest: {error}") from error
        requirements += parsed.requirements
        dev += parsed.dev_requirements
        requires_python = parsed.requires_python
        if manifest["format"] == "pipfile":
            pipfile = tomllib.loads(manifest["text"])  # parse_manifest read it already
    if not requirements and not dev:
        raise BadRequest("nothing to resolve: give requirements, dev_requirements or a manifest")
    formats = payload.get("formats", ["requirements.txt"])
    if not isinstance(formats, list) or not all(f in FORMATS for f in formats):
        raise BadRequest(f"formats: expected a list drawn from {', '.join(FORMATS)}")
    try:
        environment = Environment.from_json(payload.get("environment"))
    except InvalidEnvironment as error:
        raise BadRequest("environment: " + "; ".join(error.problems)) from error
    return requirements, dev, constraints, environment, formats, requires_python, pipfile


def _pipfile_hash(pipfile: Mapping[str, Any]) -> str:
    """The Pipfile's hash as pipenv (plette) computes it, which ``pipenv install --deploy`` and
    ``micropipenv install --deploy`` compare with the lock's ``_meta.hash``."""
    data = {
        "_meta": {"requires": pipfile.get("requires", {}), "sources": pipfile.get("source", [])},
        "default": pipfile.get("packages", {}),
        "develop": pipfile.get("dev-packages", {}),
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _locked(
    services: Services, outcome: ResolveOutcome, base: str, dev_only: set[str]
) -> list[LockedPackage]:
    required_by: dict[str, list[str]] = {}
    depends: dict[str, list[str]] = {}
    for dependant, edges in outcome.resolution.dependencies.items():
        for project, _requirement in edges:
            required_by.setdefault(project, []).append("" if dependant == ROOT else dependant)
            if dependant != ROOT:
                depends.setdefault(dependant, []).append(project)
    packages = []
    for project, version in sorted(outcome.resolution.pins.items()):
        chosen = outcome.files[project]
        served = chosen.served
        packages.append(
            LockedPackage(
                name=project,
                version=version,
                filename=served.file.filename,
                url=base + file_path(served),
                sha256=served.file.sha256 or "",
                source=served.index,
                size=served.file.size,
                upload_time=served.file.upload_time,
                requires_python=served.file.requires_python,
                extras=tuple(sorted(outcome.resolution.extras.get(project, ()))),
                dependencies=tuple(sorted(set(depends.get(project, ())))),
                required_by=tuple(sorted(set(required_by.get(project, ())))),
                dev=project in dev_only,
            )
        )
    return packages


def _reachable(outcome: ResolveOutcome, requirements: Sequence[str]) -> set[str]:
    """The pinned projects that the main (non-dev) requirements need, directly or not."""
    pending = [canonicalize_name(Requirement(r).name) for r in requirements]
    seen: set[str] = set()
    while pending:
        project = pending.pop()
        if project in seen or project not in outcome.resolution.pins:
            continue
        seen.add(project)
        pending.extend(dependency for dependency, _ in outcome.resolution.dependencies.get(project, ()))
    return seen


def _advice(services: Services, request: AdviceRequest) -> Advice | None:
    """The rules of this request; None (plain resolution) when there is nothing to apply."""
    rules = services.prescriptions
    advisories = services.advisories_for
    if rules is None and advisories is None:
        return None
    budget = (
        services.config.server.search_budget if request.budget_seconds is None else request.budget_seconds
    )
    return Advice(
        Pipeline(rules if rules is not None else _NO_RULES, request.context),
        advisories_for=advisories,
        budget_seconds=budget,
        seed=request.seed,
        max_trials=request.max_trials,
    )


def _advice_body(advice: AdviceOutcome | None) -> dict[str, Any] | None:
    if advice is None:
        return None
    return {
        "recommendation_type": advice.recommendation_type,
        "score": round(advice.score, 6),
        "first_score": round(advice.first_score, 6),
        "justification": [note.to_dict() for note in advice.justification],
        "stack_info": [note.to_dict() for note in advice.stack_info],
        "advised_manifest_changes": list(advice.advised_manifest_changes),
        "search": {
            "seed": advice.seed,
            "trials": advice.search.trials,
            "improvements": advice.search.improvements,
            "unsolvable": advice.search.unsolvable,
            "seconds": round(advice.search_seconds, 4),
        },
    }


async def resolve_request(
    services: Services, payload: Any, base: str, *, authenticated: bool = False
) -> tuple[int, dict[str, Any]]:
    try:
        requirements, dev, constraints, environment, formats, requires_python, pipfile = _read_request(
            payload
        )
        advice_request = read_advice(payload, environment, authenticated=authenticated)
    except (BadRequest, BadAdvice) as error:
        return 400, {"error": str(error), "status": 400}
    try:
        outcome = await resolve(
            services,
            [*requirements, *dev],
            environment,
            constraints=constraints,
            options=ResolverOptions(),
            advice=_advice(services, advice_request),
        )
    except BootRefused as error:
        return 422, {
            "error": f"a prescription refused this request: {error.reason}",
            "stack_info": [note.to_dict() for note in error.stack_info],
            "status": 422,
        }
    except NoSolution as error:
        return 422, {
            "error": "the requirements cannot be satisfied on this machine",
            "report": error.report,
            "status": 422,
        }
    except ResolutionTooDeep as error:
        return 422, {"error": str(error), "status": 422}
    except (Undecidable, ProjectUnavailable) as error:
        return 502, {"error": str(error), "status": 502}
    dev_only = set(outcome.resolution.pins) - _reachable(outcome, requirements)
    packages = _locked(services, outcome, base, dev_only)
    missing_hash = [p.name for p in packages if not p.sha256]
    if missing_hash:
        return 502, {"error": f"no sha256 is known for the files of {', '.join(missing_hash)}", "status": 502}
    # Hashes choose the file: the all-builds view keeps a lock installable whatever analysis later
    # teaches the machine views.
    view = f"{base}/all/simple/"
    sources = {
        name: LockSource(name, f"{base}/index/{name}/simple/") for name in {p.source for p in packages}
    }
    locks: dict[str, str] = {}
    if "requirements.txt" in formats:
        locks["requirements.txt"] = requirements_txt(
            packages,
            view,
            header="generated by index-proxy",
        )
    if "Pipfile.lock" in formats:
        # From a Pipfile, the lock carries its [requires] table and its hash, as pipenv writes them.
        locks["Pipfile.lock"] = pipfile_lock(
            packages,
            [sources[name] for name in sorted(sources)],
            requires_python=requires_python,
            requires=pipfile.get("requires", {}) if pipfile is not None else None,
            pipfile_sha256=_pipfile_hash(pipfile) if pipfile is not None else None,
        )
    if "pylock.toml" in formats:
        locks["pylock.toml"] = pylock_toml(packages, sources, requires_python=requires_python)
    stats = outcome.resolution.stats
    return 200, {
        "pins": [
            {
                "name": p.name,
                "version": p.version,
                "filename": p.filename,
                "url": p.url,
                "sha256": p.sha256,
                "index": p.source,
                "markers": None,
                "extras": list(p.extras),
                "required_by": [who or "<requirements>" for who in p.required_by],
                "dev": p.dev,
            }
            for p in packages
        ],
        "locks": locks,
        "justification": [
            {
                "package": p.name,
                "version": p.version,
                "file": p.filename,
                "message": f"{p.name} {p.version}: {outcome.files[p.name].reason}",
                "rejected_files": [
                    {"filename": filename, "reason": why} for filename, why in outcome.files[p.name].rejected
                ],
            }
            for p in packages
        ],
        "advice": _advice_body(outcome.advice),
        "stats": {
            "seconds": round(outcome.seconds, 4),
            "resolver_seconds": round(stats.seconds, 4),
            "decisions": stats.decisions,
            "conflicts": stats.conflicts,
            "metadata_fetched": outcome.metadata_fetched,
            "candidate_requests": stats.candidate_requests,
        },
    }
