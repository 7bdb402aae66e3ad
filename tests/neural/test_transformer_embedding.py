"""transformer_embedding: the seed's spec, pooling, each fine-tuning method's trainable set (counted by hand for
all-MiniLM-L6-v2) and its learning, saved state holding only what was trained, base checks, end to end."""

import copy
import json
import re
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from router_core.data.loading import load_dataset
from router_core.data.types import Battles
from router_core.errors import UserError
from router_core.pipeline import load_scorer, train_from_spec
from router_core.specs import TransformerEmbeddingSpec, parse_training_spec
from router_core.store import ModelStore
from router_core.testing import quiet_fit_args
from router_neural.losses import pair_losses
from router_neural.transformer_embedding import TransformerEmbeddingScorer
from router_neural.transformer_embedding.encoder import (
    Pooling,
    PromptEncoder,
    base_directory,
    load_backbone,
    load_tokenizer,
    pool,
    read_pooling,
)
from router_neural.transformer_embedding.finetuning import apply_method, finetunable_backbone, trainable_count
from tests.neural.conftest import TINY_EMBEDDING
from tests.neural.test_dense_network import write_battles

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT.parent / "shared" / "seed" / "000_fc394b1cda1518de.txt"
SEED_EXAMPLE = ROOT / "tests" / "fixtures" / "seed" / "transformer_embedding_lora.json"
"""The seed document's "Transformer Embedding Example (with LoRA)", copied as written."""
MINILM = "all-MiniLM-L6-v2"
METHODS = {"lora": {"method": "lora", "rank": 16, "target_modules": ["query", "value"]},
           "qlora": {"method": "qlora", "rank": 16, "bnb_4bit_compute_dtype": "float32"},
           "last_layers": {"method": "last_layers", "num_layers": 2}, "bitfit": {"method": "bitfit"},
           "full": {"method": "full"}}  # fmt: skip


def seed_example() -> dict:
    return json.loads(SEED_EXAMPLE.read_text())


# -- all-MiniLM-L6-v2 by hand: hidden h = 384, intermediate i = 1536, 6 layers, vocabulary 30522, 512 positions,
# 2 token types; no pooler (the sentence embedding does not use it, so it is not loaded).
H, INTER, LAYERS, VOCAB, POSITIONS, TYPES = 384, 1536, 6, 30522, 512, 2
LINEAR = {"query": H * H + H, "key": H * H + H, "value": H * H + H, "attention.output.dense": H * H + H,
          "intermediate.dense": H * INTER + INTER, "output.dense": INTER * H + H}  # fmt: skip
LAYER = sum(LINEAR.values()) + 2 * (2 * H)  # + two LayerNorms (weight and bias)
EMBEDDINGS = VOCAB * H + POSITIONS * H + TYPES * H + 2 * H
EXPECTED_TRAINABLE = {
    "full": EMBEDDINGS + LAYERS * LAYER,
    "bitfit": H + LAYERS * (4 * H + INTER + H + 2 * H),  # embedding LayerNorm; q k v o, intermediate, output, 2 LayerNorms
    "last_layers": 2 * LAYER,
    "lora": LAYERS * 2 * 16 * (H + H),  # A (r x in) + B (out x r) on query and value of every layer
    "qlora": LAYERS * 2 * 16 * (H + H),  # peft's default targets for BERT are query and value as well
}


def test_hand_counts_match_the_figures_measured_before():
    assert EXPECTED_TRAINABLE == {"full": 22_565_376, "bitfit": 25_728, "last_layers": 3_548_928, "lora": 147_456,
                                  "qlora": 147_456}  # fmt: skip


# -- specs --------------------------------------------------------------------------------------------------------
@pytest.mark.skipif(not SEED.is_file(), reason=f"needs the seed document {SEED} (beside the checkout) to compare with")
def test_seed_example_fixture_is_the_seed_documents_spec():
    blocks = re.findall(r"```json\n(.*?)```", SEED.read_text(), re.S)
    assert [json.loads(b) for b in blocks if '"transformer_embedding"' in b] == [seed_example()]


def test_seed_example_validates_as_written():
    spec = parse_training_spec(seed_example()).model.spec
    assert isinstance(spec, TransformerEmbeddingSpec)
    assert spec.transformer_model_name == "sentence-transformers/all-MiniLM-L12-v2"
    assert spec.finetuning_spec.method == "lora" and spec.finetuning_spec.target_modules == "auto"
    assert (spec.finetuning_spec.rank, spec.finetuning_spec.alpha, spec.finetuning_spec.dropout) == (16, 32, 0.05)
    assert spec.min_model_occurrences == 1000 and spec.embedding_model_epochs == 100 and spec.seed == 42
    assert spec.embedding_spec is not None and spec.embedding_spec.pair_mlp_layers == 8


def test_finetuning_specs_are_checked():
    base = {"optimizer": {"optimizer_type": "adamw"}, "embedding_spec": TINY_EMBEDDING}
    for method in METHODS.values():
        assert TransformerEmbeddingSpec(**base, finetuning_spec=method).finetuning_spec.method == method["method"]
    with pytest.raises(ValidationError, match="load_in_4bit must be true"):
        TransformerEmbeddingSpec(**base, finetuning_spec={"method": "qlora", "load_in_4bit": False})
    with pytest.raises(ValidationError, match="bnb_4bit_quant_type"):
        TransformerEmbeddingSpec(**base, finetuning_spec={"method": "qlora", "bnb_4bit_quant_type": "int4"})
    with pytest.raises(ValidationError, match="'lora', 'qlora', 'last_layers', 'bitfit', 'full'"):
        TransformerEmbeddingSpec(**base, finetuning_spec={"method": "prefix"})
    with pytest.raises(ValidationError, match="num_layers"):
        TransformerEmbeddingSpec(**base, finetuning_spec={"method": "bitfit", "num_layers": 2})


# -- the base model and its pooling --------------------------------------------------------------------------------
def test_unreachable_hub_model_fails_within_seconds(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))  # nothing cached
    start = time.perf_counter()
    with pytest.raises(UserError, match="all-MiniLM-L12-v2.*unreachable.*all-MiniLM-L6-v2"):
        base_directory("sentence-transformers/all-MiniLM-L12-v2")
    assert time.perf_counter() - start < 60  # generous for a loaded machine: an online retry loop takes minutes


def _pooling_dir(path: Path, modules: list[dict] | None, config: dict | None = None) -> Path:
    path.mkdir()
    if modules is not None:
        (path / "modules.json").write_text(json.dumps(modules))
    if config is not None:
        (path / "1_Pooling").mkdir()
        (path / "1_Pooling" / "config.json").write_text(json.dumps(config))
    return path


def test_pooling_is_read_from_the_sentence_transformers_config(tmp_path):
    assert read_pooling(base_directory(MINILM)) == Pooling("mean", True)  # mean tokens, then Normalize
    st = [{"path": "", "type": "sentence_transformers.models.Transformer"},
          {"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]  # fmt: skip
    cls = _pooling_dir(tmp_path / "cls", st, {"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False})
    last = _pooling_dir(tmp_path / "last", st, {"pooling_mode_lasttoken": True})
    assert read_pooling(cls) == Pooling("cls", False) and read_pooling(last) == Pooling("last", False)
    assert read_pooling(_pooling_dir(tmp_path / "plain", None)) == Pooling("mean", False)
    with pytest.raises(UserError, match="pooling_mode_max_tokens is not supported"):
        read_pooling(_pooling_dir(tmp_path / "max", st, {"pooling_mode_max_tokens": True}))


def test_pool_known_answers():
    hidden = torch.arange(24, dtype=torch.float32).view(2, 3, 4)  # 2 prompts, 3 positions, width 4
    right = torch.tensor([[1, 1, 0], [1, 1, 1]])
    left = torch.tensor([[0, 1, 1], [1, 1, 1]])
    assert torch.equal(pool(hidden, right, Pooling("mean", False))[0], hidden[0, :2].mean(0))
    assert torch.equal(pool(hidden, right, Pooling("cls", False)), hidden[:, 0])
    assert torch.equal(pool(hidden, right, Pooling("last", False)), torch.stack([hidden[0, 1], hidden[1, 2]]))
    assert torch.equal(pool(hidden, left, Pooling("last", False)), hidden[:, 2])
    assert torch.allclose(pool(hidden, right, Pooling("mean", True)).norm(dim=1), torch.ones(2))


@pytest.mark.slow
def test_untouched_encoder_reproduces_the_sentence_embedding():
    """With nothing trained yet (LoRA's B starts at zero) the encoder gives sentence-transformers' own vectors."""
    from router_neural.embeddings import TextEncoder

    directory = base_directory(MINILM)
    texts = ["Write a haiku about the sea.", "What is the integral of x squared from 0 to 3?"]
    encoder = PromptEncoder(finetunable_backbone(directory, TransformerEmbeddingSpec(
        optimizer={"optimizer_type": "adamw"}, embedding_spec=TINY_EMBEDDING).finetuning_spec, torch.device("cpu")),
        read_pooling(directory)).eval()  # fmt: skip
    batch = load_tokenizer(directory)(texts, return_tensors="pt", padding=True)
    with torch.no_grad():
        ours = encoder(batch["input_ids"], batch["attention_mask"]).numpy()
    reference = TextEncoder(MINILM).encode(texts, write_cache=False)
    assert np.allclose(ours, reference, atol=1e-5)


# -- what each method trains ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def minilm() -> torch.nn.Module:
    return load_backbone(base_directory(MINILM))


def _intended(name: str, method: str) -> bool:
    """Whether the parameter `name` should train under `method` (by the method's definition)."""
    if method in ("lora", "qlora"):
        return bool(re.search(r"\.(query|value)\.lora_[AB]\.", name))
    if method == "bitfit":
        return name.endswith(".bias")
    if method == "last_layers":
        return bool(re.match(r"encoder\.layer\.[45]\.", name))
    return True


def _check_trainable(model: torch.nn.Module, method: str) -> None:
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trained == {n for n, _ in model.named_parameters() if _intended(n, method)}
    assert trainable_count(model) == EXPECTED_TRAINABLE[method]


@pytest.mark.parametrize("method", ["lora", "last_layers", "bitfit", "full"])
def test_exactly_the_intended_parameters_train(minilm, method):
    _check_trainable(apply_method(copy.deepcopy(minilm), TransformerEmbeddingSpec(
        optimizer={"optimizer_type": "adamw"}, embedding_spec=TINY_EMBEDDING,
        finetuning_spec=METHODS[method]).finetuning_spec), method)  # fmt: skip


def test_auto_target_modules_and_too_many_layers(minilm):
    spec = {"optimizer": {"optimizer_type": "adamw"}, "embedding_spec": TINY_EMBEDDING}
    auto = apply_method(copy.deepcopy(minilm), TransformerEmbeddingSpec(**spec).finetuning_spec)
    assert trainable_count(auto) == EXPECTED_TRAINABLE["lora"]  # "auto" on BERT = query and value
    with pytest.raises(UserError, match="num_layers is 7 but the model has 6 layers"):
        apply_method(copy.deepcopy(minilm), TransformerEmbeddingSpec(
            **spec, finetuning_spec={"method": "last_layers", "num_layers": 7}).finetuning_spec)  # fmt: skip


def _real_batch(n: int = 8):
    """The first `n` decisive battles of the bundled arena sample with a prompt: prompts, model ids, winners."""
    battles = [b for b in load_dataset("arena_sample") if b.prompt and b.winner in ("model_a", "model_b")][:n]
    models = sorted({m for b in battles for m in (b.model_a, b.model_b)})
    index = {m: i for i, m in enumerate(models)}
    a = torch.tensor([index[b.model_a] for b in battles])
    b_ = torch.tensor([index[b.model_b] for b in battles])
    winner = torch.tensor([0 if b.winner == "model_a" else 1 for b in battles])
    return [b.prompt for b in battles], len(models), a, b_, winner


@pytest.mark.slow
@pytest.mark.parametrize("method", list(METHODS))
def test_each_method_trains_only_its_parameters_and_the_loss_falls(method):
    """Score = fixed random per-model readout of the encoder's prompt vector; only the encoder learns, on the
    pairwise loss of 8 real battles. The loss must fall, the trained tensors move and the frozen ones stay."""
    torch.manual_seed(0)
    directory = base_directory(MINILM)
    ft = TransformerEmbeddingSpec(optimizer={"optimizer_type": "adamw"}, embedding_spec=TINY_EMBEDDING,
                                  finetuning_spec=METHODS[method]).finetuning_spec  # fmt: skip
    encoder = PromptEncoder(finetunable_backbone(directory, ft, torch.device("cpu")), Pooling("mean", False))
    _check_trainable(encoder.backbone, method)
    prompts, n_models, a, b, winner = _real_batch()
    batch = load_tokenizer(directory)(prompts, return_tensors="pt", padding=True, truncation=True, max_length=32)
    readout = torch.randn(n_models, 384) / 384**0.5
    before = {n: p.detach().clone() for n, p in encoder.named_parameters()}
    optimizer = torch.optim.Adam([p for p in encoder.parameters() if p.requires_grad], lr=3e-3 if method != "full"
                                 else 3e-4)  # fmt: skip
    losses = []
    for _ in range(6):
        vectors = encoder(batch["input_ids"], batch["attention_mask"])
        score_a, score_b = (vectors * readout[a]).sum(1), (vectors * readout[b]).sum(1)
        loss = pair_losses(score_a, score_b, winner, kind="bradley_terry", margin=0.1, coeff=0.0, eps=0.01).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0], losses
    for name, param in encoder.named_parameters():
        if type(param).__name__ == "Params4bit":  # QLoRA's frozen 4-bit base: bitsandbytes on CPU repacks its bytes
            assert not param.requires_grad, name  # into its kernel's layout on the first forward, so no byte check
            continue
        moved = not torch.equal(param.detach(), before[name])
        assert moved == param.requires_grad or (param.requires_grad and "lora_A" in name), name  # A moves after B


# -- the scorer: saved state, base checks, end to end -------------------------------------------------------------
def _small_spec(base: str, **overrides) -> TransformerEmbeddingSpec:
    fields = {"transformer_model_name": base, "hidden_dims": [16], "proj_dim": 8, "max_length": 24,
              "embedding_spec": TINY_EMBEDDING, "embedding_model_epochs": 1, "min_model_comparisons": 1, "seed": 0,
              "optimizer": {"optimizer_type": "adamw", "learning_rate": 0.003}} | overrides  # fmt: skip
    return TransformerEmbeddingSpec(**fields)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, planted):
    """A LoRA scorer fitted for one epoch on a private copy of all-MiniLM-L6-v2 (so the base can be altered)."""
    import shutil

    base = tmp_path_factory.mktemp("base") / "minilm"
    shutil.copytree(base_directory(MINILM), base)
    _, train, validation, _ = planted
    spec = _small_spec(str(base))
    scorer = TransformerEmbeddingScorer(spec)
    with pytest.MonkeyPatch.context() as patch:  # the function-scoped ROUTER_HOME fixture does not reach here
        patch.setenv("ROUTER_HOME", str(tmp_path_factory.mktemp("home")))
        scorer.preflight()
        scorer.fit(Battles.from_records(train[:96]), Battles.from_records(validation[:32]),
                   *quiet_fit_args(epochs=1, batch_size=32, seed=0))  # fmt: skip
    return scorer, spec, base


@pytest.mark.slow
def test_saved_state_holds_only_the_adapters_and_scores_identically(fitted, tmp_path):
    from safetensors import safe_open

    scorer, spec, base = fitted
    scorer.save(tmp_path)
    with safe_open(str(tmp_path / "state.safetensors"), "pt") as handle:
        keys = [k for k in handle.keys() if ".network.weights." in k]
        encoder_scalars = sum(handle.get_slice(k).get_shape()[0] * (handle.get_slice(k).get_shape() + [1])[1]
                              for k in keys if ".encoder." in k)  # fmt: skip
    assert keys and all("lora_" in k or ".weights.head." in k for k in keys)
    assert encoder_scalars == EXPECTED_TRAINABLE["lora"]  # nothing of the frozen base is copied
    assert (tmp_path / "state.safetensors").stat().st_size < 2_000_000  # the base alone is 90 MB
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["network"]["config"]["base"] == {"name": str(base), "sha256": scorer.pretrained_["sha256"]}
    prompts = ["Write a short poem about the ocean.", "Fix this python bug please", ""]
    models = [*scorer.known_models, "never-seen"]
    expected = scorer.score(prompts, models)
    assert np.isnan(expected[:, -1]).all() and np.isfinite(expected[:, :-1]).all()
    assert np.array_equal(TransformerEmbeddingScorer.load(tmp_path, spec).score(prompts, models), expected,
                          equal_nan=True)  # fmt: skip


@pytest.mark.slow
def test_loading_on_a_different_base_is_a_clear_error(fitted, tmp_path):
    from safetensors.torch import load_file, save_file

    scorer, spec, base = fitted
    scorer.save(tmp_path)
    weights = load_file(str(base / "model.safetensors"))
    name = next(iter(weights))
    weights[name] = weights[name] + 1e-3
    save_file(weights, str(base / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(UserError, match=r"base model mismatch: .* sha256 " + scorer.pretrained_["sha256"]):
        TransformerEmbeddingScorer.load(tmp_path, spec)


def test_seed_example_with_its_hub_model_fails_fast_and_clearly(tmp_path, planted, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    document = seed_example()  # sentence-transformers/all-MiniLM-L12-v2: not packaged, the hub is unreachable here
    document["data"] = {"path": write_battles(tmp_path / "b.jsonl", planted[1][:50]), "format": "canonical"}
    start = time.perf_counter()
    with pytest.raises(UserError, match="all-MiniLM-L12-v2"):
        train_from_spec(parse_training_spec(document), ModelStore(), quiet_fit_args()[1])
    assert time.perf_counter() - start < 60  # generous for a loaded machine: an online retry loop takes minutes


@pytest.mark.slow
def test_seed_example_trains_with_the_packaged_minilm(tmp_path, planted):
    """The seed's LoRA example, with a small sample, 1 + 2 epochs and the packaged MiniLM for the hub model."""
    document = seed_example()
    document["model"]["spec"] |= {"transformer_model_name": MINILM, "min_model_comparisons": 20,
                                  "embedding_model_epochs": 2, "max_length": 32}  # fmt: skip
    del document["data"]["dataset"]  # a local file of planted battles instead of the HF dataset
    document["data"] |= {"path": write_battles(tmp_path / "b.jsonl", planted[1][:300]), "format": "canonical",
                         "max_samples": 200}  # fmt: skip
    document["epochs"] = 2
    outcome = train_from_spec(parse_training_spec(document), ModelStore(), quiet_fit_args()[1])
    scorer = load_scorer(outcome.saved)
    assert outcome.saved.ref == "transformer_embedding/transformer-embedding-lora"
    assert [h["epoch"] for h in scorer.history_] == [1, 2]
    assert np.isfinite(scorer.score(["Explain the integral"], ["model-0", "model-1"])).all()
