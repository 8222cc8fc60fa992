"""params.yaml survives `dvc exp run -S`: DVC rewrites it with ruamel's round-trip dumper (which drops
the quotes around URLs in flow mappings) and reads it back with its own loader."""

from __future__ import annotations

from pathlib import Path

import pytest
from dvc.utils.serialize import load_yaml, modify_yaml

from valueharm.core.params import load_params, preset_params, write_params

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("name", sorted(p.stem for p in (REPO / "configs").glob("*.yaml")))
def test_every_preset_survives_dvc_set_param(tmp_path: Path, name: str):
    params = preset_params(name, REPO / "configs")
    out = tmp_path / "params.yaml"
    write_params(params, name, out)
    with modify_yaml(str(out)) as data:
        data["value"] = "power"
    # DVC's loader. With ruamel.yaml.clib installed it raised "found unexpected ':'" on the unquoted
    # http://... that the round trip leaves inside a flow mapping, and every `dvc exp run -S` failed.
    assert load_yaml(str(out))["value"] == "power"
    assert load_params(out)["generate"] == params["generate"]
