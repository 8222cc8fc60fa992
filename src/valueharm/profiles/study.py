"""The models of the study and what each one is.

`study.models` in params.yaml lists every model the per-model stages run on (a DVC matrix):
- `vanilla`: the (safety-tuned) base model every comparison uses;
- `<profile>`: a VIM LoRA adapter for a profile of the manifest (e.g. `hedonism`, `power-r03`);
- `icl-<profile>`: the prompt-only baseline, a role-play system prompt with the profile's scores;
- `control-shuffled`: the VIM recipe for `study.control_profile` with value labels permuted
  across arguments (tells value content from the act of fine-tuning on arguments);
- `control-benign`: the same LoRA budget on benign instruction data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from valueharm.core.errors import UserError
from valueharm.core.registry import closest

CONTROLS = ("control-shuffled", "control-benign")
ICL_PREFIX, CONTROL_PREFIX = "icl-", "control-"


def model_kind(name: str) -> tuple[str, str | None]:
    """(kind, profile named by the model) from the name alone: the package's only name parser.

    vanilla -> ("vanilla", None); icl-<p> -> ("icl", p); control-<x> -> (control-<x>, None);
    anything else -> ("adapter", name). Needs no manifest, so early checks and tables can use it.
    """
    if name == "vanilla":
        return "vanilla", None
    if name.startswith(ICL_PREFIX):
        return "icl", name[len(ICL_PREFIX) :]
    if name.startswith(CONTROL_PREFIX):
        return name, None
    return "adapter", name


@dataclass(frozen=True)
class ModelSpec:
    name: str
    kind: str  # vanilla | adapter | icl | control-shuffled | control-benign
    profile: str | None  # manifest profile the model stands for (None: vanilla, benign)
    target: dict[str, float] | None  # the profile's 10 value scores

    @property
    def trains_adapter(self) -> bool:
        return self.kind in {"adapter", "control-shuffled", "control-benign"}

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "profile": self.profile, "target": self.target}


def load_manifest(path: str | Path) -> dict[str, dict[str, Any]]:
    import json

    path = Path(path)
    if not path.exists():
        raise UserError(f"profile manifest {path} not found", "run `dvc repro profiles`")
    manifest = json.loads(path.read_text())
    return {p["name"]: p for p in manifest["profiles"]}


def model_spec(name: str, manifest: dict[str, dict[str, Any]], control_profile: str | None = None) -> ModelSpec:
    """What model `name` is; a profile not in the manifest fails with the available names."""

    def profile_of(profile: str) -> dict[str, float]:
        if profile not in manifest:
            shown = ", ".join(list(manifest)[:20]) + (" ..." if len(manifest) > 20 else "")
            guess = closest(profile, list(manifest))
            raise UserError(
                f"profile {profile!r} is not in the profile manifest",
                (f"did you mean {guess}? " if guess else "")
                + f"use one of: {shown} (or change the profiles stage params)",
            )
        return {k: float(v) for k, v in manifest[profile]["scores"].items()}

    kind, profile = model_kind(name)
    if kind == "vanilla" or kind == "control-benign":
        return ModelSpec(name, kind, None, None)
    if kind == "control-shuffled":
        if not control_profile:
            raise UserError("control-shuffled needs study.control_profile", "set it to a profile name in params.yaml")
        return ModelSpec(name, kind, control_profile, profile_of(control_profile))
    if kind.startswith(CONTROL_PREFIX):
        guess = closest(name, list(CONTROLS))
        raise UserError(
            f"unknown control {name!r}", (f"did you mean {guess}? " if guess else "") + "use " + " or ".join(CONTROLS)
        )
    return ModelSpec(name, kind, profile, profile_of(profile))


def served_weights(name: str) -> str:
    """The weights a study model runs on: an `icl-` baseline on vanilla's (prompt-only), any other its own."""
    return "vanilla" if model_kind(name)[0] == "icl" else name


def load_study_model(model_dir: str | Path, vanilla_dir: str | Path, dtype: str = "auto"):
    """(model, tokenizer, system prompt or None, spec dict) for a model folder written by stage train."""
    import json

    from valueharm.models.base import load_model

    model_dir = Path(model_dir)
    spec_path = model_dir / "spec.json"
    if not spec_path.exists():
        raise UserError(f"{spec_path} not found", "run `dvc repro` so that stage train writes it")
    spec = json.loads(spec_path.read_text())
    model, tokenizer = load_model(vanilla_dir, dtype)
    if (model_dir / "adapter_config.json").exists():
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(model_dir))
        model.eval()
    return model, tokenizer, spec.get("system_prompt"), spec


def replicate_adapters(model_dir: str | Path, backend: str = "hf") -> list[tuple[int, Path]]:
    """(seed, folder) of every replicate adapter stage train wrote (study.seeds beyond the first), in
    study.seeds order (spec.json's `seeds`); an empty list for a model with one adapter or none.
    Replicates are swapped into the in-process model, so a `backend` other than hf fails here, in one line."""
    import json

    model_dir = Path(model_dir)
    spec_path = model_dir / "spec.json"
    seeds = (json.loads(spec_path.read_text()).get("seeds") or []) if spec_path.exists() else []
    found = []
    for seed in seeds[1:]:
        folder = model_dir / "replicates" / f"seed-{seed}"
        if not (folder / "adapter_config.json").exists():
            raise UserError(f"replicate adapter {folder} is missing", "re-run `dvc repro train` for this model")
        found.append((int(seed), folder))
    if found and backend != "hf":
        raise UserError(
            f"model {model_dir.name} has {len(found)} replicate adapters (study.seeds), which only the hf backend "
            "generates",
            "set generate.backend: hf, or give study.seeds one seed",
        )
    return found


def use_replicate(model, seed: int, folder: str | Path) -> None:
    """Make the replicate adapter in `folder` the active one of a PeftModel (loaded once, by seed)."""
    adapter = f"seed_{seed}"
    if adapter not in getattr(model, "peft_config", {}):
        model.load_adapter(str(folder), adapter_name=adapter)
    model.set_adapter(adapter)
    model.eval()


def load_study_tokenizer(model_dir: str | Path, vanilla_dir: str | Path):
    """(tokenizer, system prompt or None, spec dict) without loading weights: for a server-side backend."""
    import json

    from transformers import AutoTokenizer

    from valueharm.models.base import resolve_model_dir

    spec_path = Path(model_dir) / "spec.json"
    if not spec_path.exists():
        raise UserError(f"{spec_path} not found", "run `dvc repro` so that stage train writes it")
    spec = json.loads(spec_path.read_text())
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_dir(vanilla_dir), trust_remote_code=False)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer, spec.get("system_prompt"), spec
