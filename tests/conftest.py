"""Shared fixtures: the repository root, the real-data folder, the default data/ and the converted model.

Expensive artefacts (the default data/, the converted base model) are built once per session in
a temporary folder, never in the working tree.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REALDATA = REPO.parent / "shared" / "realdata"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def realdata() -> Path:
    if not REALDATA.is_dir():
        pytest.skip(
            f"real study files not available: {REALDATA} is absent (it sits beside the project on the team's machines only)"
        )
    return REALDATA


@pytest.fixture(scope="session")
def default_data(tmp_path_factory) -> Path:
    """The default data/ as `valueharm data init` builds it (downloads pinned wheels once, cached)."""
    from valueharm.data.sources import materialize

    return materialize(tmp_path_factory.mktemp("data-a") / "data")


@pytest.fixture(scope="session")
def base_model_dir(default_data, tmp_path_factory) -> Path:
    """The packaged SmolLM2 converted to a safetensors folder (what stage base_model writes)."""
    from valueharm.models.base import build_base_model

    out = tmp_path_factory.mktemp("model") / "base_model"
    build_base_model("smollm2-135m-instruct", None, default_data, out)
    return out


@pytest.fixture(scope="session")
def base_model(base_model_dir):
    """(model, tokenizer) in float32: the tolerances tests state are fp32 ones, and `auto` would pick
    bfloat16 on a CPU with AMX-BF16 (CI has failed on such a machine when this fixture used `auto`)."""
    from valueharm.models.base import load_model

    return load_model(base_model_dir, "float32")


def copy_tree(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst, symlinks=False, dirs_exist_ok=True)


@pytest.fixture(scope="session")
def pyrit_dir(default_data) -> Path:
    """PyRIT's human-labelled scorer-evaluation CSVs, as `valueharm data init` places them."""
    return default_data / "judge" / "pyrit_scorer_evals"


SLOW_ENV = "VALUEHARM_SLOW"


def pytest_collection_modifyitems(config, items) -> None:
    """`slow` tests (long DVC runs not yet timed on an idle machine) run only with VALUEHARM_SLOW=1."""
    if os.environ.get(SLOW_ENV) == "1":
        return
    skip = pytest.mark.skip(reason=f"slow test (long DVC runs): set {SLOW_ENV}=1 to run it")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
