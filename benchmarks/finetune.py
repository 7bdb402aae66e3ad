"""transformer_embedding's fine-tuning methods on all-MiniLM-L6-v2: seconds per training step, peak RSS, trainable
parameters and saved state size, each method in a fresh child process (so the peak RSS is that method's own).

Run: `uv run python benchmarks/finetune.py [--steps 3]`. Writes benchmarks/results/finetune.json.
A step is one optimizer step of the transformer_embedding network (encoder as the method sets it up + two-tower
head) on 32 real battles of the bundled arena sample, every prompt padded or truncated to 128 tokens (the fixed
worst case of max_length 128), the pairwise loss over both sides, gradient clipping 1.0, AdamW; CPU only. The
first step is a warm-up and not timed. The saved size is that of the network's tensors in the saved state (what
was trained + the head); the LLM-embedding stage saved beside it is the same for every method and left out.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "finetune.json"
METHODS: dict[str, dict[str, Any]] = {
    "lora": {"method": "lora", "rank": 16, "alpha": 32, "target_modules": "auto"},
    "qlora": {"method": "qlora", "rank": 16, "alpha": 32, "bnb_4bit_quant_type": "nf4",
              "bnb_4bit_compute_dtype": "float32"},
    "last_layers": {"method": "last_layers", "num_layers": 2},
    "bitfit": {"method": "bitfit"},
    "full": {"method": "full"},
}  # fmt: skip
BATCH, MAX_LENGTH = 32, 128


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_method(name: str, steps: int) -> dict[str, Any]:
    """One method's measurements (runs in the child process)."""
    import torch
    from safetensors.torch import save_file

    from router_core.data.loading import load_dataset
    from router_core.features import PromptFeatureScaler, prompt_feature_matrix
    from router_core.specs import TransformerEmbeddingSpec
    from router_neural.losses import pair_losses
    from router_neural.optim import build_optimizer
    from router_neural.transformer_embedding.encoder import PromptEncoder, base_directory, load_tokenizer, read_pooling
    from router_neural.transformer_embedding.finetuning import finetunable_backbone, trainable_count
    from router_neural.transformer_embedding.heads import TwoTowerHead
    from router_neural.transformer_embedding.model import TransformerEmbeddingNetwork, _trained_names

    torch.manual_seed(0)
    spec = TransformerEmbeddingSpec(transformer_model_name="all-MiniLM-L6-v2", finetuning_spec=METHODS[name],
                                    load_embedding_model_from="transformer_embedding/unused", max_length=MAX_LENGTH,
                                    optimizer={"optimizer_type": "adamw", "learning_rate": 1e-4})  # fmt: skip
    battles = [b for b in load_dataset("arena_sample") if b.prompt and b.winner in ("model_a", "model_b")]
    battles = battles[: BATCH * (steps + 1)]
    models = sorted({m for b in battles for m in (b.model_a, b.model_b)})
    index = {m: i for i, m in enumerate(models)}
    rss_before = _rss_mb()
    directory = base_directory(spec.transformer_model_name)
    loaded = time.perf_counter()
    encoder = PromptEncoder(finetunable_backbone(directory, spec.finetuning_spec, torch.device("cpu")),
                            read_pooling(directory))  # fmt: skip
    load_seconds = time.perf_counter() - loaded
    features = prompt_feature_matrix([b.prompt or "" for b in battles])
    scaled = torch.as_tensor(PromptFeatureScaler().fit(features).transform(features), dtype=torch.float32)
    head = TwoTowerHead(384, scaled.shape[1], torch.randn(len(models), 64), spec.proj_dim, list(spec.hidden_dims),
                        spec.dropout)  # fmt: skip
    network = TransformerEmbeddingNetwork(encoder, head).train()
    optimizer, _ = build_optimizer(spec.optimizer, network)
    tokens = load_tokenizer(directory)([b.prompt or "" for b in battles], truncation=True, max_length=MAX_LENGTH,
                                       padding="max_length", return_tensors="pt")  # fmt: skip
    a = torch.tensor([index[b.model_a] for b in battles])
    b_ = torch.tensor([index[b.model_b] for b in battles])
    winner = torch.tensor([0 if b.winner == "model_a" else 1 for b in battles])
    seconds = []
    for step in range(steps + 1):
        rows = slice(step * BATCH, (step + 1) * BATCH)
        began = time.perf_counter()
        vectors = network.encoder(tokens["input_ids"][rows], tokens["attention_mask"][rows])
        both = network.head(torch.cat([vectors, vectors]), torch.cat([scaled[rows], scaled[rows]]),
                            torch.cat([a[rows], b_[rows]]))  # fmt: skip
        loss = pair_losses(both[:BATCH], both[BATCH:], winner[rows], kind="margin_ranking", margin=0.1, coeff=0.0,
                           eps=0.01).mean()  # fmt: skip
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(network.parameters(), 1.0)
        optimizer.step()
        if step:
            seconds.append(time.perf_counter() - began)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "network.safetensors"
        save_file({k: v.detach().contiguous() for k, v in _trained_names(network).items()}, str(path))
        saved = path.stat().st_size
    return {"method": name, "spec": METHODS[name], "seconds_per_step": sorted(seconds)[len(seconds) // 2],
            "step_seconds": seconds, "peak_rss_mb": round(_rss_mb()), "rss_before_model_mb": round(rss_before),
            "load_seconds": round(load_seconds, 2), "trainable_encoder_parameters": trainable_count(encoder),
            "encoder_parameters": sum(p.numel() for p in encoder.parameters()),
            "trainable_head_parameters": trainable_count(head), "saved_network_bytes": saved}  # fmt: skip


def main() -> None:
    """Run every method in its own process and write the results JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per method (after one warm-up step)")
    parser.add_argument("--method", choices=list(METHODS), help=argparse.SUPPRESS)  # the child's entry
    args = parser.parse_args()
    if args.method:
        print(json.dumps(run_method(args.method, args.steps)))
        return
    import torch

    results = []
    for name in METHODS:
        out = subprocess.run([sys.executable, __file__, "--method", name, "--steps", str(args.steps)],
                             capture_output=True, text=True, check=True)  # fmt: skip
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"{name}: {results[-1]['seconds_per_step']:.2f} s/step, {results[-1]['peak_rss_mb']} MB, "
              f"{results[-1]['trainable_encoder_parameters']:,} trainable, {results[-1]['saved_network_bytes']:,} B")
    OUT.write_text(json.dumps({"command": "uv run python benchmarks/finetune.py --steps " + str(args.steps),
                               "batch": BATCH, "max_length": MAX_LENGTH, "torch": torch.__version__,
                               "threads": torch.get_num_threads(), "python": platform.python_version(),
                               "results": results}, indent=1) + "\n")  # fmt: skip


if __name__ == "__main__":
    main()
