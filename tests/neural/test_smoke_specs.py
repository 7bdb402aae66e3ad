"""The shipped smoke specs of the neural model types train end to end through the CLI, offline."""

from pathlib import Path

import pytest

from router_cli import main
from router_core.store import ModelStore

SPECS = Path(__file__).resolve().parents[2] / "training_specs"


@pytest.mark.parametrize("model_type", ["simple_scoring", "dense_network",
                                        pytest.param("dn_embedding", marks=pytest.mark.slow),
                                        pytest.param("transformer_embedding", marks=pytest.mark.slow)])
def test_smoke_spec_trains(model_type, capsys):
    assert main(["train", "--spec-file", str(SPECS / model_type / "smoke.json"), "--no-progress"]) == 0
    assert "validation accuracy" in capsys.readouterr().out
    (saved,) = [m for m in ModelStore().list() if m.model_type == model_type]
    assert saved.meta["metrics"]["validation_accuracy"] > 0.55
    assert (saved.path / "training.png").is_file()
