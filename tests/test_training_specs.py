"""Every file under training_specs/ validates, and schema.json is what the code generates."""

import json
from pathlib import Path

import pytest

from router_core.specs import MODEL_SPECS, parse_training_spec
from router_core.specs.errors import schema_text

SPECS = Path(__file__).resolve().parents[1] / "training_specs"
FILES = sorted(p for p in SPECS.rglob("*.json") if p.name != "schema.json")


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(SPECS)) for p in FILES])
def test_spec_file_validates(path: Path):
    spec = parse_training_spec(json.loads(path.read_text()))
    if path.parent != SPECS:  # training_specs/<model_type>/<variant>.json holds that model type
        assert spec.model.spec is not None and spec.model.spec.model_type == path.parent.name


def test_schema_json_is_up_to_date():
    assert (SPECS / "schema.json").read_text() == schema_text(), "regenerate: uv run router-cli schema --output training_specs/schema.json"


@pytest.mark.parametrize("model_type", sorted(MODEL_SPECS))
def test_every_model_type_ships_smoke_and_default(model_type: str):
    assert (SPECS / model_type / "smoke.json").is_file()
    assert (SPECS / model_type / "default.json").is_file()
