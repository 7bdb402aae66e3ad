"""W&B logging is optional, offline without a key, and never stops training; the history plot is written."""

from router_core.data.types import Battle, Battles
from router_core.scorer import FitOptions
from router_core.specs import SimpleScoringSpec, WandbSpec
from router_neural.plotting import save_history_plot
from router_neural.simple_scoring import SimpleScoringScorer

SPEC = SimpleScoringSpec(optimizer={"optimizer_type": "adam"}, min_model_occurrences=1)
DATA = Battles.from_records(Battle(model_a="a", model_b="b", winner="model_a", id=str(i)) for i in range(20))
WANDB = WandbSpec(project="router-tests", experiment_name="simple", config_name="tiny", artifact_name="simple-model")


def fit(lines: list[str]) -> SimpleScoringScorer:
    options = FitOptions(epochs=2, batch_size=8, seed=0, progress=False, log=lines.append, wandb=WANDB)
    return SimpleScoringScorer(SPEC).fit(DATA, DATA, options)


def test_offline_run_without_api_key(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    lines: list[str] = []
    fit(lines)
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("*.wandb")), lines
    assert not [line for line in lines if "W&B" in line]


def test_wandb_failure_does_not_stop_training(monkeypatch):
    import wandb

    def broken(*args, **kwargs):
        raise ConnectionError("network is down")

    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.setattr(wandb, "init", broken)
    lines: list[str] = []
    scorer = fit(lines)
    assert len(scorer.history_) == 2
    assert any("W&B start failed" in line and "network is down" in line for line in lines)


def test_disabled_mode_starts_nothing(monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    fit([])
    assert not (tmp_path / "wandb").exists()


def test_history_plot(tmp_path):
    history = [{"epoch": 1, "train_loss": 0.5, "train_accuracy": 0.6, "validation_loss": 0.6,
                "validation_accuracy": 0.55, "best": 1.0},
               {"epoch": 2, "train_loss": 0.4, "train_accuracy": 0.7, "validation_loss": 0.65,
                "validation_accuracy": 0.5}]  # fmt: skip
    assert save_history_plot(history, tmp_path / "p.png")
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    assert not save_history_plot([], tmp_path / "none.png") and not (tmp_path / "none.png").exists()
