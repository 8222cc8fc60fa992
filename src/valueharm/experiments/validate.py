"""Check params before any heavy work: the `validate` stage runs first in the DAG.

A bad `value`, a study model that is no profile of the selection, or an unknown judge fails
here in one line, before a model is loaded. The stage's output does not depend on `value`, so
a valid `dvc exp run -S value=...` re-runs nothing downstream of it except `focus`.
"""

from __future__ import annotations

from typing import Any

from valueharm.core.errors import UserError
from valueharm.core.registry import closest, unknown_name
from valueharm.experiments.focus import check_value_name
from valueharm.profiles.selection import profile_names
from valueharm.profiles.study import CONTROLS, model_kind

BACKENDS = ("hf", "openai")  # generate.backend (stages/generate.py)


def check_params(params: dict[str, Any]) -> dict[str, Any]:
    """Validate the cross-stage params; returns a summary that does not depend on `value`."""
    study = params.get("study") or {}
    models = list(study.get("models") or [])
    if "vanilla" not in models:
        raise UserError("study.models must include vanilla", "add vanilla to study.models in params.yaml")
    twice = sorted({m for m in models if models.count(m) > 1})
    if twice:
        raise UserError(f"study.models lists {', '.join(twice)} twice", "remove the duplicate from params.yaml")
    p = params.get("profiles") or {}
    names = set(profile_names(p.get("anchors", "all"), p.get("ranks", "all"), int(p.get("nearest", 10))))
    for model in models:
        kind, profile = model_kind(model)
        if kind == "vanilla" or model in CONTROLS:
            continue
        if profile not in names:
            known = ["vanilla", *CONTROLS, *sorted(names), *(f"icl-{n}" for n in sorted(names))]
            guess = closest(model, known)
            raise UserError(
                f"study model {model!r} is not a profile of the selection",
                (f"did you mean {guess}? " if guess else "")
                + "use a profile name from the profiles stage (e.g. "
                + ", ".join(sorted(names)[:6])
                + ", ...)",
            )
    control = study.get("control_profile")
    if "control-shuffled" in models and control not in names:
        guess = closest(str(control), names)
        raise UserError(
            f"study.control_profile {control!r} is not a profile of the selection",
            (f"did you mean {guess}? " if guess else "") + "set it to a profile name",
        )
    check_value_name(str(params.get("value", "")), models)
    _check_alignment_params(params)
    judge = (params.get("judge") or {}).get("name")
    from valueharm.evaluation.judges import JUDGES  # registry

    if judge not in JUDGES:
        raise unknown_name("judge", judge, sorted(JUDGES), where="params judge.name")
    second = (params.get("judge") or {}).get("second")
    if second is not None and second not in JUDGES:
        raise unknown_name("judge", second, sorted(JUDGES), where="params judge.second")
    for name, options in (params.get("judge") or {}).items():
        if not isinstance(options, dict):  # judge.<name>: that judge's options
            continue
        if name not in JUDGES:
            raise unknown_name("judge", name, sorted(JUDGES), where=f"params judge.{name}")
        valid = set(getattr(JUDGES[name], "options", {}) or {})
        for key in options:
            if key not in valid:
                raise unknown_name(f"option of judge {name}", key, sorted(valid), where=f"params judge.{name}.{key}")
    backend = (params.get("generate") or {}).get("backend", "hf")
    if backend not in BACKENDS:
        raise unknown_name("generation backend", backend, BACKENDS, where="params generate.backend")
    seeds = (params.get("study") or {}).get("seeds") or []
    if backend != "hf" and len(seeds) > 1:
        raise UserError(
            f"study.seeds has {len(seeds)} seeds, but replicate adapters are generated only by the hf backend "
            f"(generate.backend is {backend})",
            "set generate.backend: hf, or give study.seeds one seed",
        )
    from valueharm.data.benchmarks import resolve_loader

    for key, spec in (params.get("benchmarks") or {}).items():
        if isinstance(spec, dict):
            resolve_loader(str(spec.get("loader", key)))
    return {"models": models, "profiles": sorted(names), "judge": judge}


def _check_alignment_params(params: dict[str, Any]) -> None:
    """study.seeds (distinct integers), train.qa_balance, the questionnaire (items for every value,
    known values) and the manipulation thresholds (issue 12)."""
    from pathlib import Path

    from valueharm.alignment.examples import check_seeds
    from valueharm.alignment.vim import check_qa_balance
    from valueharm.evaluation.questionnaire import check_questionnaire_params
    from valueharm.experiments.manipulation import check_manipulation_params

    check_seeds((params.get("study") or {}).get("seeds"), int(params.get("seed", 42)))
    check_qa_balance((params.get("train") or {}).get("qa_balance", "none"))
    align = params.get("align_check") or {}
    if align.get("questionnaire") and Path(align["questionnaire"]).exists():
        check_questionnaire_params(align["questionnaire"], align.get("items_per_value"))
    check_manipulation_params(params.get("manipulation"))
