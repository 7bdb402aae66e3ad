"""dn_embedding_length_prediction: length metrics and baseline against hand-computed values, answer samples, token
counts, the network's shapes and unknown-model fallback; (slow) recovery of planted length effects, save / load,
the pipeline and the CLI on a tiny trained model."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from router_cli import main
from router_core.data.types import Battle, Battles
from router_core.errors import UserError
from router_core.length import (
    MedianBaseline,
    evaluate_lengths,
    length_metrics,
    length_predictions,
    length_report,
    length_samples,
)
from router_core.pipeline import load_model, load_scorer, train_from_spec
from router_core.registry import scorer_class
from router_core.specs import MODEL_SPECS, parse_training_spec
from router_core.store import ModelStore
from router_core.testing import quiet_fit_args
from router_neural.networks import LengthNetwork
from router_neural.tokens import CL100K_SHA256, TokenCounter, _cl100k_file, read_tiktoken_ranks

TYPE = "dn_embedding_length_prediction"
STAGE = {"embedding_type": "attention", "h_emb": 16, "h_scalar": 8, "h_pair": 16, "d_out": 8, "num_attention_heads": 2,
         "pairs_per_model": 8, "models_per_batch": 4, "embeddings_per_model": 2,
         "optimizer": {"optimizer_type": "adamw"}}  # fmt: skip
SPEC = {"model_type": TYPE, "hidden_dims": [32, 16], "input_proj_dim": 16, "model_id_embedding_dim": 8,
        "embedding_model_epochs": 1, "embedding_spec": STAGE,
        "optimizer": {"optimizer_type": "adamw", "learning_rate": 0.01}}  # fmt: skip


# -- metrics, baseline, samples (core, no torch) ------------------------------------------------------------------
def test_length_metrics_match_hand_computed_values():
    got = length_metrics(np.array([10.0, 20.0, 30.0]), np.array([20, 20, 10]))
    # errors 10, 0, 20; ratios 0.5, 1, 3
    assert got["mae"] == pytest.approx(10.0)
    assert got["median_abs_rel_error"] == pytest.approx(0.5)
    assert got["rmse_log"] == pytest.approx(math.sqrt((math.log(0.5) ** 2 + math.log(3) ** 2) / 3))
    assert got["median_ratio"] == pytest.approx(1.0)
    assert length_metrics(np.array([2.0]), np.array([0]))["median_ratio"] == 2.0  # a count below 1 is taken as 1
    assert set(length_metrics(np.zeros(0), np.zeros(0)).values()) == {None}
    with pytest.raises(ValueError, match="shape"):
        length_metrics(np.ones(2), np.ones(3))


def test_median_baseline_per_model_with_global_fallback():
    baseline = MedianBaseline.fit(["a", "a", "a", "b", "b"], np.array([1, 2, 9, 10, 20]))
    assert baseline.medians == {"a": 2.0, "b": 15.0} and baseline.global_median == 9.0
    np.testing.assert_array_equal(baseline.predict(["b", "unknown", "a"]), [15.0, 9.0, 2.0])
    assert MedianBaseline.from_json(json.loads(json.dumps(baseline.to_json()))) == baseline


def test_every_answer_counts_once():
    records = [
        Battle("m1", "m2", "tie", prompt="p", response_a="one two", response_b="three"),
        Battle("m1", "m2", "both_bad", prompt="p", response_a="one two", response_b="  "),  # same answer, blank one
        Battle("m2", "m3", "model_a", prompt="q", response_a="x", response_b=None),
        Battle("m2", "m3", "model_b", prompt=None, response_a="y", response_b="z"),  # no prompt
    ]
    samples = length_samples(Battles.from_records(records))
    assert list(zip(samples.prompts, samples.models, samples.responses, strict=True)) == [
        ("p", "m1", "one two"), ("p", "m2", "three"), ("q", "m2", "x")]  # fmt: skip


# -- tokens --------------------------------------------------------------------------------------------------------
class _WordCounter:
    """A length predictor for metric plumbing: lengths in words, every known model predicted at 4 words."""

    tokenizer = "words"
    known_models = ("m1", "m2")
    baseline_ = MedianBaseline({"m1": 2.0, "m2": 8.0}, 5.0)

    def count_tokens(self, texts: list[str]) -> np.ndarray:
        return np.array([len(t.split()) for t in texts], dtype=np.int64)

    def predict_lengths(self, prompts: list[str], models: list[str], batch_size: int = 128) -> np.ndarray:
        return np.array([[4.0 if m in self.known_models else 6.0 for m in models] for _ in prompts])


def test_length_report_pools_the_answers_of_several_parts():
    part1 = Battles.from_records([Battle("m1", "m2", "tie", prompt="p", response_a="a b", response_b="a b c d e f g h")])
    part2 = Battles.from_records([Battle("m1", "m3", "model_a", prompt="q", response_a="a", response_b="a b c")])
    one, two = length_predictions(_WordCounter(), part1), length_predictions(_WordCounter(), part2)
    np.testing.assert_array_equal(one.actual, [2, 8])
    np.testing.assert_array_equal(two.predicted, [4, 6])  # m3 is unknown: the predictor's fallback
    np.testing.assert_array_equal(two.baseline, [2, 5])  # and the baseline's global median
    pooled = length_report([one, two], "words")
    expected = length_metrics(np.array([4.0, 4, 4, 6]), np.array([2.0, 8, 1, 3]))
    assert {k: pooled[k] for k in expected} == pytest.approx(expected)
    assert pooled["median_ratio"] == pytest.approx(2.0)  # ratios 2, 0.5, 4, 2: not the mean of each part's median
    assert pooled["baseline"] == pytest.approx(length_metrics(np.array([2.0, 8, 2, 5]), np.array([2.0, 8, 1, 3])))
    assert (pooled["n_samples"], pooled["n_unknown_model"], pooled["median_actual"]) == (4, 1, 2.5)
    assert evaluate_lengths(_WordCounter(), part2) == length_report([two], "words")


def test_token_counts_in_named_tokenizers():
    texts = ["hello world", "Hello, how are you doing today?", "<|endoftext|>"]
    np.testing.assert_array_equal(TokenCounter("cl100k_base").count(texts), [2, 8, 7])  # special text is plain text
    np.testing.assert_array_equal(TokenCounter("all-MiniLM-L6-v2").count(texts[:2]), [2, 8])
    assert TokenCounter("cl100k_base").count([]).shape == (0,)
    with pytest.raises(UserError, match="unknown tokenizer"):
        TokenCounter("gpt2")


def test_cl100k_file_is_refused_unless_its_hash_is_the_published_one(tmp_path: Path):
    assert len(read_tiktoken_ranks(_cl100k_file(), CL100K_SHA256)) == 100256
    tampered = tmp_path / "cl100k_base.tiktoken"
    tampered.write_bytes(_cl100k_file().read_bytes().replace(b" 0\n", b" 1\n", 1))
    with pytest.raises(UserError, match="refusing"):
        read_tiktoken_ranks(tampered, CL100K_SHA256)


# -- network -------------------------------------------------------------------------------------------------------
def _network(feature_dim: int = 3) -> LengthNetwork:
    torch.manual_seed(0)
    return LengthNetwork(5, feature_dim, torch.randn(4, 6), torch.tensor([3.0, 4.0, 5.0, 6.0]), id_dim=2, proj_dim=8,
                         hidden_dims=[8, 4], dropout=0.0, skip=True).eval()  # fmt: skip


@pytest.mark.parametrize("feature_dim", [3, 0])
def test_network_shapes_and_untrained_output_is_the_offset(feature_dim: int):
    net = _network(feature_dim)
    out = net(torch.randn(7, 5 + feature_dim), torch.tensor([0, 1, 2, 3, 0, 1, -1]))
    assert out.shape == (7,)
    np.testing.assert_allclose(out.detach().numpy(), [3, 4, 5, 6, 3, 4, 4.5], atol=1e-6)  # head starts at zero


def test_unknown_model_gets_the_mean_embeddings_and_offset():
    net = _network()
    torch.nn.init.normal_(net.head.weight)  # make the output depend on the model-side inputs
    inputs = torch.randn(3, 8)
    with torch.no_grad():
        unknown = net(inputs, torch.full((3,), -1))
        net.llm_vectors[0] = net.llm_vectors.mean(0)  # model 0 made into the "mean model"
        net.id_embedding.weight[0] = net.id_embedding.weight.mean(0)
        net.offset[0] = net.offset.mean()
        mean_model = net(inputs, torch.zeros(3, dtype=torch.long))
    np.testing.assert_allclose(unknown.numpy(), mean_model.numpy(), rtol=1e-5)


def test_spec_needs_one_llm_embedding_source_and_is_a_length_task():
    cls = MODEL_SPECS[TYPE]
    assert cls.task == "length" and cls.prompt_aware
    spec = cls.model_validate({"model_type": TYPE, "optimizer": {"optimizer_type": "muon"},
                               "load_embedding_model_from": "dn_embedding/x", "min_model_comparisons": 5})  # fmt: skip
    assert spec.hidden_dims == [256, 128, 64] and spec.tokenizer == "cl100k_base" and spec.min_model_occurrences == 5
    with pytest.raises(ValueError, match="exactly one"):
        cls.model_validate({"model_type": TYPE, "optimizer": {"optimizer_type": "adam"}})


# -- fitted models (slow: MiniLM embeddings) -----------------------------------------------------------------------
def planted_battles(n: int, seed: int) -> list[Battle]:
    """Answers of `short` words, x2 for model `verbose`, x3 when the prompt says "elaborate" (log-normal noise)."""
    rng = np.random.default_rng(seed)
    models = ("verbose", "plain", "terse-a", "terse-b")
    records = []
    for i in range(n):
        a, b = rng.choice(4, 2, replace=False)
        elaborate = bool(rng.random() < 0.5)
        prompt = f"{'Please elaborate on' if elaborate else 'Tell me about'} subject number {i % 40}"

        def answer(m: int) -> str:
            words = 20 * (2 if models[m] == "verbose" else 1) * (3 if elaborate else 1) * math.exp(rng.normal(0, 0.1))
            return " ".join(["word"] * round(words))

        records.append(Battle(models[a], models[b], ("model_a", "model_b", "tie", "both_bad")[i % 4], id=f"{seed}-{i}",
                              prompt=prompt, response_a=answer(a), response_b=answer(b)))  # fmt: skip
    return records


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ROUTER_HOME", str(tmp_path_factory.mktemp("length_home")))
        spec = MODEL_SPECS[TYPE].model_validate(SPEC)
        predictor = scorer_class(TYPE)(spec)
        predictor.fit(Battles.from_records(planted_battles(300, 0)), Battles.from_records(planted_battles(80, 1)),
                      *quiet_fit_args(epochs=25, batch_size=32, seed=0))  # fmt: skip
        yield predictor


@pytest.mark.slow
def test_planted_length_effects_are_recovered(fitted):
    prompts = ["Please elaborate on subject number 3", "Tell me about subject number 3"]
    lengths = fitted.predict_lengths(prompts, ["verbose", "plain", "terse-a"])
    assert lengths.shape == (2, 3) and lengths.dtype == np.float64
    assert lengths[0, 0] / lengths[0, 1] == pytest.approx(2.0, rel=0.15)  # the verbose model writes twice as long
    assert lengths[1, 0] / lengths[1, 1] == pytest.approx(2.0, rel=0.15)
    assert lengths[0, 1] / lengths[1, 1] == pytest.approx(3.0, rel=0.15)  # "elaborate" triples the length
    assert lengths[1, 2] == pytest.approx(fitted.count_tokens(["word " * 19 + "word"])[0], rel=0.15)
    held_out = evaluate_lengths(fitted, Battles.from_records(planted_battles(100, 2)))
    assert held_out["rmse_log"] < 0.5 * held_out["baseline"]["rmse_log"]
    assert held_out["mae"] < held_out["baseline"]["mae"] and abs(held_out["median_ratio"] - 1) < 0.1


@pytest.mark.slow
def test_save_load_round_trip_and_unknown_models(fitted, tmp_path: Path):
    prompts, models = ["Please elaborate on subject number 7", "Something new"], ["plain", "never-seen", "other-new"]
    before = fitted.predict_lengths(prompts, models, 1)
    np.testing.assert_allclose(fitted.predict_lengths(prompts, models, 64), before, rtol=1e-5)
    assert np.isfinite(before).all() and (before > 0).all()
    np.testing.assert_array_equal(before[:, 1], before[:, 2])  # every unknown model gets the same fallback
    fitted.save(tmp_path)
    assert json.loads((tmp_path / "length.json").read_text())["tokenizer"] == "cl100k_base"
    loaded = type(fitted).load(tmp_path, fitted.spec)
    np.testing.assert_array_equal(loaded.predict_lengths(prompts, models, 8), fitted.predict_lengths(prompts, models, 8))
    assert loaded.baseline_ == fitted.baseline_ and loaded.known_models == fitted.known_models
    with pytest.raises(TypeError, match="predict_lengths"):
        loaded.score(prompts, models)


def _write_battles(path: Path, records: list[Battle]) -> Path:
    path.write_text("".join(json.dumps(r.to_json()) + "\n" for r in records))
    return path


@pytest.mark.slow
def test_pipeline_and_cli_infer_evaluate(tmp_path: Path, capsys):
    data = _write_battles(tmp_path / "battles.jsonl", planted_battles(200, 3))
    document = {"model": {"name": "tiny", "spec": SPEC}, "data": {"path": [str(data)], "validation_split": 0.2},
                "epochs": 10, "batch_size": 32}  # fmt: skip
    outcome = train_from_spec(parse_training_spec(document), ModelStore(), quiet_fit_args()[1])
    metrics = outcome.metrics
    assert metrics["tokenizer"] == "cl100k_base" and metrics["validation_mae"] < metrics["validation_baseline_mae"]
    assert not (outcome.saved.path / "calibration.json").exists()
    ref = outcome.saved.ref
    with pytest.raises(UserError, match="length model"):
        load_scorer(outcome.saved)

    out = tmp_path / "lengths.json"
    prompts = ["Please elaborate on subject number 1", "Tell me about subject number 1"]
    assert main(["infer", "--model", ref, "--models-to-score", "verbose", "plain", "nobody", "--prompts", *prompts,
                 "--output-path", str(out)]) == 0  # fmt: skip
    written = json.loads(out.read_text())
    assert list(written) == ["verbose", "plain", "nobody"] and all(len(v) == 2 for v in written.values())
    np.testing.assert_allclose(np.array(list(written.values())).T, load_model(outcome.saved).predict_lengths(prompts, list(written)))
    assert main(["infer", "--model", ref, "--models-to-score", "plain", "--prompts", "x", "--backend", "onnx"]) != 0

    held_out = _write_battles(tmp_path / "held_out.jsonl", planted_battles(60, 4))
    report = tmp_path / "evaluation.json"
    assert main(["evaluate", "--model", ref, "--data", str(held_out), "--output-path", str(report)]) == 0
    result = json.loads(report.read_text())
    for key in ("mae", "median_abs_rel_error", "rmse_log", "median_ratio"):
        assert isinstance(result[key], float) and isinstance(result["baseline"][key], float)
    assert result["n_samples"] == len(length_samples(Battles.from_records(planted_battles(60, 4))))
    assert result["mae"] < result["baseline"]["mae"]
    assert "baseline median_ratio" in capsys.readouterr().out


@pytest.mark.slow
def test_smoke_spec_trains(capsys):
    spec = Path(__file__).resolve().parents[2] / "training_specs" / TYPE / "smoke.json"
    assert main(["train", "--spec-file", str(spec), "--no-progress"]) == 0
    assert "validation MAE" in capsys.readouterr().out
