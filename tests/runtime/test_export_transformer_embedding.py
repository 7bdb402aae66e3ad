"""Export of transformer_embedding: the merged backbone, the two-tower head in numpy, the Triton refusal, and
exported scores equal to the torch model's (LoRA fast; bitfit, qlora and int8 slow)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from router_core.errors import UserError
from router_core.pipeline import load_scorer, train_from_spec
from router_core.specs import parse_training_spec
from router_core.store import ModelStore
from router_core.synthetic import PlantedSkills
from router_neural.transformer_embedding.encoder import Pooling, PromptEncoder
from router_neural.transformer_embedding.finetuning import merged_backbone
from router_neural.transformer_embedding.heads import TwoTowerHead
from router_runtime import load_exported
from router_runtime.backends import select_backend
from router_runtime.backends.torch import head_of, two_tower_head
from router_runtime.head import load_head, save_head, score_rows
from tests.neural.conftest import TINY_EMBEDDING
from tests.runtime.conftest import OPTIMIZER, PARITY_PROMPTS

PROMPTS = ["How do I sort a list in Python?", "Tell me a joke about cats", "", "  Prove that sqrt(2) is irrational "]
METHODS = {"lora": {"method": "lora", "rank": 4, "target_modules": ["query", "value"]}, "bitfit": {"method": "bitfit"},
           "qlora": {"method": "qlora", "rank": 4, "bnb_4bit_compute_dtype": "float32"}}  # fmt: skip


def two_layer_minilm(directory: Path) -> Path:
    """The packaged all-MiniLM-L6-v2 with only its first 2 of 6 layers (config.json says so; the other files are
    links to the packaged ones): the same architecture, tokenizer and pooling, three times cheaper to fine-tune."""
    from router_neural.transformer_embedding.encoder import base_directory

    directory.mkdir()
    for file in base_directory("all-MiniLM-L6-v2").iterdir():
        if file.name == "config.json":
            (directory / file.name).write_text(json.dumps(json.loads(file.read_text()) | {"num_hidden_layers": 2}))
        else:
            (directory / file.name).symlink_to(file)
    return directory


def te_spec(base: Path, method: str) -> dict:
    return {"model_type": "transformer_embedding", "transformer_model_name": str(base), "hidden_dims": [16],
            "proj_dim": 8, "max_length": 16, "embedding_spec": TINY_EMBEDDING, "embedding_model_epochs": 1,
            "min_model_occurrences": 1, "seed": 0, "finetuning_spec": METHODS[method], "optimizer": OPTIMIZER,
            "base_model": {"model_type": "bradley_terry_scoring"}}  # fmt: skip  # exports base + alpha * head


@pytest.fixture(scope="module")
def te_store(tmp_path_factory: pytest.TempPathFactory):
    """`te_store(method) -> SavedModel`: a transformer_embedding model over a 2-layer MiniLM fine-tuned by `method`,
    trained once (one epoch on 120 battles: enough to move the adapters, biases and head away from their start)."""
    home = tmp_path_factory.mktemp("te_store")
    base = two_layer_minilm(home / "minilm-2")
    data = home / "battles.jsonl"
    battles = PlantedSkills.cyclic(n_models=5, n_topics=4).battles(120, seed=0)
    data.write_text("".join(json.dumps(b.to_json()) + "\n" for b in battles))
    store = ModelStore(home)
    done = {}

    def get(method: str):
        if method not in done:
            document = {"model": {"name": method, "spec": te_spec(base, method)}, "epochs": 1, "batch_size": 64,
                        "data": {"path": str(data), "format": "canonical", "validation_split": 0.2, "seed": 0}}  # fmt: skip
            done[method] = train_from_spec(parse_training_spec(document), store).saved
        return done[method]

    return get


@pytest.fixture(scope="module")
def te_scorer(te_store):
    """`te_scorer(method)`: the saved model of te_store loaded as its torch scorer, once per module."""
    done = {}

    def get(method: str):
        if method not in done:
            done[method] = load_scorer(te_store(method))
        return done[method]

    return get


@pytest.fixture(scope="module")
def te_exported(te_store, tmp_path_factory: pytest.TempPathFactory):
    """`te_exported(method, quantize="none") -> Path`: the model of te_store exported once per module."""
    from router_runtime.export import export_model

    done: dict[tuple[str, str], Path] = {}

    def get(method: str, quantize: str = "none") -> Path:
        if (method, quantize) not in done:
            out = tmp_path_factory.mktemp("te_exports") / f"{method}-{quantize}"
            export_model(te_store(method), out, quantize=quantize, prompts=PARITY_PROMPTS)
            done[method, quantize] = out
        return done[method, quantize]

    return get


def check_export(te_scorer, directory: Path, method: str) -> None:
    scorer = load_exported(directory, backend="auto")
    assert scorer.backend == "onnx"  # auto never picks triton for a two-tower head
    models = [*scorer.known_models[::-1], "never-seen"]
    actual = scorer.score(PROMPTS, models)
    expected = te_scorer(method).score(PROMPTS, models)
    assert np.isnan(actual[:, -1]).all() and np.isnan(expected[:, -1]).all()
    np.testing.assert_allclose(actual[:, :-1], expected[:, :-1], atol=1e-4, rtol=0)
    assert np.ptp(expected[:, :-1]) > 1e-3  # the scores differ between models: a non-trivial comparison


def test_lora_export_scores_equal_the_torch_model(te_scorer, te_exported):
    directory = te_exported("lora")
    check_export(te_scorer, directory, "lora")
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["parity"]["max_abs_diff"] <= 1e-4 and manifest["use_prompt_features"] is True
    assert set(manifest["files"]) >= {"model.onnx", "tokenizer.json", "encoder.json", "head.json", "scaler.json"}
    encoder = json.loads((directory / "encoder.json").read_text())
    assert encoder["pooling"] == {"mode": "mean", "normalize": True, "in_graph": True}
    assert (encoder["max_seq_length"], encoder["strip"], encoder["dimension"]) == (16, False, 384)
    head = json.loads((directory / "head.json").read_text())
    saved = te_scorer("lora")
    assert head["format"] == 2 and head["models"] == list(saved.models_)
    assert saved.base_ is not None and head["alpha"] == pytest.approx(saved.alpha_)


def test_merged_backbone_equals_the_adapter_model(te_scorer):
    scorer = te_scorer("lora")
    encoder = scorer.network_.encoder.eval()
    merged = merged_backbone(encoder.backbone, scorer.base_dir(), scorer.spec.finetuning_spec)
    assert not any("lora" in name for name in merged.state_dict()) and type(merged).__name__ == "BertModel"
    batch = scorer.tokenizer()(PROMPTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        adapted = encoder(batch["input_ids"], batch["attention_mask"])
        plain = PromptEncoder(merged, encoder.pooling)(batch["input_ids"], batch["attention_mask"])
        lora_b = [p for n, p in encoder.backbone.named_parameters() if "lora_B" in n]
    assert lora_b and max(float(p.detach().abs().max()) for p in lora_b) > 0  # trained: merging changes weights
    torch.testing.assert_close(plain, adapted, atol=1e-5, rtol=0)
    assert any("lora" in name for name in encoder.backbone.state_dict())  # the scorer itself is left as it was


def random_tower(seed: int = 0) -> TwoTowerHead:
    torch.manual_seed(seed)
    tower = TwoTowerHead(6, 4, torch.randn(5, 7), 3, [8, 5], 0.3).eval()
    with torch.no_grad():
        for parameter in tower.parameters():
            parameter.normal_(0.0, 0.5)
    return tower


def test_two_tower_head_in_numpy_equals_torch(tmp_path):
    tower = random_tower()
    x = np.random.default_rng(1).normal(size=(7, 10)).astype(np.float32)
    rows = np.array([4, 0, 2])
    head = two_tower_head(tower, tuple(f"m{i}" for i in range(5)))
    prompt, features = torch.as_tensor(x[:, :6]), torch.as_tensor(x[:, 6:])
    with torch.no_grad():
        expected = tower(prompt.repeat_interleave(3, 0), features.repeat_interleave(3, 0),
                         torch.as_tensor(rows).repeat(7)).view(7, 3).numpy()  # fmt: skip
    assert head.two_tower and head.model_scale is not None and head.model_scale.shape == (5, 9)
    assert np.abs(expected).max() > 0.1
    np.testing.assert_allclose(score_rows(head, x, rows, chunk=3), expected, atol=1e-5, rtol=0)
    based = head.with_base(np.linspace(-1, 1, 5), 0.25)  # base + alpha * head, as a model over a base scores
    np.testing.assert_allclose(score_rows(based, x, rows), np.linspace(-1, 1, 5)[rows] + 0.25 * expected, atol=1e-5)
    save_head(based, tmp_path)
    np.testing.assert_array_equal(score_rows(load_head(tmp_path), x, rows), score_rows(based, x, rows))


def test_two_tower_known_answer():
    """proj_dim 1, one hidden unit: score = w2 * lrelu(w1 * (lrelu(a x_p) ++ lrelu(b x_f)) . lrelu(c v_m)) + b2."""
    tower = TwoTowerHead(1, 1, torch.tensor([[2.0], [-1.0]]), 1, [1], 0.0).eval()
    with torch.no_grad():
        tower.prompt_proj[0].weight.fill_(1.0)  # 2 outputs: (x_p, x_p)
        tower.feature_proj[0].weight.fill_(3.0)
        tower.llm_proj[0].weight.copy_(torch.tensor([[1.0], [2.0], [-1.0]]))
        tower.mlp[0].weight.copy_(torch.tensor([[1.0, 1.0, 1.0]]))
        tower.mlp[-1].weight.fill_(2.0)
        tower.mlp[-1].bias.fill_(0.5)
    head = two_tower_head(tower, ("a", "b"))
    # prompt (x_p, x_f) = (1, 1): prompt side (1, 1, 3); model a: lrelu(2, 4, -2) = (2, 4, -0.2), product . 1 = 5.4
    # model b: lrelu(-1, -2, 1) = (-0.1, -0.2, 1), product . 1 = 2.7; scores 2 * 5.4 + 0.5, 2 * 2.7 + 0.5
    np.testing.assert_allclose(score_rows(head, np.array([[1.0, 1.0]], np.float32), np.array([0, 1])),
                               [[11.3, 5.9]], rtol=1e-6)  # fmt: skip


def test_triton_refuses_a_two_tower_head():
    head = two_tower_head(random_tower(), tuple(f"m{i}" for i in range(5)))
    with pytest.raises(UserError, match="no kernel for a two-tower head"):
        select_backend("triton", exported=True, two_tower=True)
    assert select_backend("auto", exported=True, two_tower=True) == "onnx"
    assert select_backend("auto", exported=False, two_tower=True) == "torch"
    pytest.importorskip("triton")
    from router_runtime.backends.triton import TritonHead

    with pytest.raises(UserError, match="no kernel for a two-tower head"):
        TritonHead(head, device="cpu")


def test_head_of_reads_the_scorer_with_its_base(te_scorer):
    scorer = te_scorer("lora")
    head = head_of(scorer)
    assert head.two_tower and head.models == scorer.models_ and head.alpha == pytest.approx(scorer.alpha_)
    np.testing.assert_allclose(head.base, scorer.base_.for_models(head.models), rtol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["bitfit", "qlora"])
def test_other_methods_export(te_scorer, te_exported, method):
    check_export(te_scorer, te_exported(method), method)


@pytest.mark.slow
def test_int8_lora_export_keeps_the_ranking(te_exported):
    directory = te_exported("lora", "int8")
    parity = json.loads((directory / "manifest.json").read_text())["parity"]
    assert parity["spearman"] >= 0.99 and parity["top1_agreement"] >= 0.95
    assert (directory / "model.onnx").stat().st_size < (te_exported("lora") / "model.onnx").stat().st_size / 2


def test_last_token_pooling_traces_with_a_dynamic_batch(tmp_path):
    """Last-token pooling is a gather: an ONNX graph traced on 2 rows pools 3 rows as torch does."""
    import onnxruntime

    class Pool(torch.nn.Module):
        def forward(self, hidden, mask):  # noqa: D102
            from router_neural.transformer_embedding.encoder import pool

            return pool(hidden, mask, Pooling("last", True))

    hidden = torch.randn(2, 4, 3)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    torch.onnx.export(Pool(), (hidden, mask), str(tmp_path / "pool.onnx"), input_names=["hidden", "mask"],
                      dynamic_axes={"hidden": {0: "n", 1: "L"}, "mask": {0: "n", 1: "L"}}, dynamo=False)  # fmt: skip
    session = onnxruntime.InferenceSession(str(tmp_path / "pool.onnx"), providers=["CPUExecutionProvider"])
    hidden, mask = torch.randn(3, 5, 3), torch.tensor([[1, 0, 0, 0, 0], [1, 1, 1, 0, 0], [0, 0, 1, 1, 1]])
    got = session.run(None, {"hidden": hidden.numpy(), "mask": mask.numpy()})[0]
    np.testing.assert_allclose(got, Pool()(hidden, mask).numpy(), atol=1e-6)


@pytest.mark.slow
def test_exported_model_scores_without_torch(te_exported, tmp_path):
    import subprocess
    import sys

    from tests.runtime.test_torch_free import ROOT, SCRIPT

    done = subprocess.run([sys.executable, "-c", SCRIPT, str(te_exported("lora")), str(tmp_path / "scores.json")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"heavy": [], "shape": [2, 6], "code": 0, "finite": True}
