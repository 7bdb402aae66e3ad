"""Serving speed of a MiniLM-L6 dense_network model: the torch path vs ONNX fp32 vs ONNX int8, side by side.

Run: `uv run python benchmarks/runtime.py [--repeats 2] [--torch-free-python /path/to/venv/bin/python] [--home DIR]`.
Writes benchmarks/results/runtime.json. Trains a dense_network (hidden [256, 128, 64], the seed's example) on
synthetic battles among 64 models over the bundled arena prompts, exports it twice (fp32, int8), then measures
on the unseen Kaggle-sample prompts (../shared/data/kaggle_arena_55k_samples):
- whole-process `router-cli infer` for 500 prompts x 6 and x 64 models (wall, peak RSS);
- encoder throughput at batch 1, 16, 64; head throughput for 1,000 prompts x 64 models;
- one short prompt x 64 models, warm: p50 / p99 latency;
- the serving process's peak RSS (load + score 500 x 64; the exports in `--torch-free-python`'s environment if
  given, the torch path in this one), the exports with ONNX Runtime's CPU memory arena on and off;
  `--only serving_process` measures that section again into the existing results.

Peak RSS is each measured process's own: a process started from this (large) one inherits its high-water mark in
`ru_maxrss` (Linux copies the memory map's counters at fork and keeps the larger value across exec), so every
measured command runs under a small launcher (`python -c LAUNCH`, itself fresh from exec) and reports the child's
`ru_maxrss`, and the serving processes read their own `VmHWM` (reset by exec) from /proc/self/status.
`--home DIR` keeps the trained model and the exports in DIR and reuses them on the next run.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
KAGGLE = ROOT.parent / "shared" / "data" / "kaggle_arena_55k_samples" / "train_sample_khaaliswooden.csv"
CLI = Path(sys.executable).parent / "router-cli"
N_MODELS = 64
SHORT_PROMPT = "What is the capital of Australia?"


def kaggle_prompts() -> list[str]:
    """First turn of each Kaggle-sample row, distinct, in file order."""
    with KAGGLE.open(newline="", encoding="utf-8") as handle:
        turns = [json.loads(row["prompt"])[0] for row in csv.DictReader(handle)]
    return [p for p in dict.fromkeys(turns) if isinstance(p, str) and p.strip()]


def train(home: Path) -> str:
    """A dense_network over 64 models trained on synthetic battles (planted per-model prompt-length preference)."""
    from router_core.data.loading import load_embedded_sample
    from router_core.data.types import Battle
    from router_core.pipeline import train_from_spec
    from router_core.specs import parse_training_spec
    from router_core.store import ModelStore

    rng = np.random.default_rng(0)
    prompts = list(dict.fromkeys(b.prompt for b in load_embedded_sample() if b.prompt))[:1500]
    models = [f"model-{i}" for i in range(N_MODELS)]
    skill = rng.normal(size=N_MODELS)
    battles = []
    for i in range(6000):
        a, b = rng.choice(N_MODELS, size=2, replace=False)
        prompt = prompts[i % len(prompts)]
        edge = skill[a] - skill[b] + (0.5 if (len(prompt) > 200) == (a % 2 == 0) else -0.5)
        winner = "model_a" if rng.random() < 1 / (1 + np.exp(-edge)) else "model_b"
        battles.append(Battle(models[a], models[b], winner, id=str(i), prompt=prompt))
    data = home / "battles.jsonl"
    data.write_text("".join(json.dumps(b.to_json()) + "\n" for b in battles))
    spec = {"model": {"name": "bench", "spec": {"model_type": "dense_network", "hidden_dims": [256, 128, 64],
                                                "model_id_embedding_dim": 16, "min_model_occurrences": 1,
                                                "optimizer": {"optimizer_type": "adamw", "learning_rate": 0.001}}},
            "data": {"path": str(data), "format": "canonical", "validation_split": 0.1, "seed": 0},
            "epochs": 2, "batch_size": 128}  # fmt: skip
    return train_from_spec(parse_training_spec(spec), ModelStore(home)).saved.ref


LAUNCH = """
import json, os, subprocess, sys, time
start = time.perf_counter()
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
_, status, usage = os.wait4(child.pid, 0)
wall = time.perf_counter() - start
err = child.stderr.read().decode()[-800:]
print(json.dumps({"wall_s": wall, "peak_rss_mb": usage.ru_maxrss / 1024, "code": os.waitstatus_to_exitcode(status),
                  "stderr": err}))
"""
"""Runs argv[1:] from a fresh, small process: its wall time and its own peak RSS (see the module docstring)."""


def timed_process(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one child process run to its end (started by the LAUNCH process)."""
    done = subprocess.run([sys.executable, "-c", LAUNCH, *cmd], env=env, capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["code"] != 0:
        raise RuntimeError(f"{cmd[:4]} failed: {result['stderr']}")
    return result["wall_s"], result["peak_rss_mb"]


def whole_process(variants: dict[str, list[str]], prompts_file: Path, env: dict[str, str], repeats: int) -> dict:
    """`router-cli infer` from process start to exit, for 6 and 64 models, per variant (interleaved runs)."""
    out: dict[str, dict] = {}
    for k in (6, N_MODELS):
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
        for _ in range(repeats):
            for name, model_args in variants.items():
                cmd = [str(CLI), "infer", *model_args, "--models-to-score", *[f"model-{i}" for i in range(k)],
                       "--prompts-file", str(prompts_file), "--output-path",
                       str(prompts_file.parent / f"out-{name}-{k}.json")]  # fmt: skip
                runs[name].append(timed_process(cmd, env))
                print(f"infer 500 x {k}, {name}: {runs[name][-1][0]:.2f} s, {runs[name][-1][1]:.0f} MB", flush=True)
        out[f"500x{k}"] = {name: {"median_s": statistics.median(w for w, _ in r), "peak_rss_mb": max(m for _, m in r)}
                           for name, r in runs.items()}  # fmt: skip
    return out


def rate(fn, items: int, min_seconds: float = 1.0) -> float:
    """Items per second of `fn()` (one warm-up call, then repeated for at least `min_seconds`)."""
    fn()
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < min_seconds or calls < 2:
        fn()
        calls += 1
    return items * calls / elapsed


def latency(fn, n: int = 200) -> dict[str, float]:
    """p50 / p99 milliseconds of `fn()` over `n` warm calls."""
    for _ in range(5):
        fn()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return {"p50_ms": float(np.percentile(times, 50)), "p99_ms": float(np.percentile(times, 99))}


def in_process(ref: str, exports: dict[str, Path], prompts: list[str]) -> dict:
    """Encoder and head throughput, single-prompt latency: torch vs the exported variants."""
    import torch

    from router_core.pipeline import load_scorer
    from router_core.store import ModelStore
    from router_runtime import load_exported
    from router_runtime.backends.torch import head_of
    from router_runtime.head import score_rows

    torch_scorer = load_scorer(ModelStore().resolve(ref))
    st = torch_scorer.encoder().model
    exported = {name: load_exported(path, backend="onnx") for name, path in exports.items()}
    models = [f"model-{i}" for i in range(N_MODELS)]
    encoder: dict[str, dict[str, float]] = {}
    for batch in (1, 16, 64):
        texts = prompts[: max(batch * 4, 32)]
        encoder[f"batch_{batch}"] = {"torch": rate(lambda: st.encode(texts, batch_size=batch, show_progress_bar=False),
                                                   len(texts))}  # fmt: skip
        for name, scorer in exported.items():
            encoder[f"batch_{batch}"][name] = rate(lambda s=scorer: s._encoder.encode(texts, batch), len(texts))
    head, rows = head_of(torch_scorer), np.arange(N_MODELS)
    x = np.random.default_rng(0).normal(size=(1000, head.input_dim)).astype(np.float32)
    network = torch_scorer.network_.eval()
    inputs, ids = torch.as_tensor(x), torch.arange(N_MODELS)

    def torch_head() -> None:
        with torch.no_grad():
            for start in range(0, 1000, 128):  # as PromptScorer.score: 128 prompts x k models per forward
                chunk = inputs[start : start + 128]
                network(chunk.repeat_interleave(N_MODELS, dim=0), ids.repeat(len(chunk)))

    head_rates = {"torch": rate(torch_head, 1000 * N_MODELS), "numpy": rate(lambda: score_rows(head, x, rows),
                                                                           1000 * N_MODELS)}  # fmt: skip
    single = {"torch": latency(lambda: torch_scorer.score([SHORT_PROMPT], models))}
    for name, scorer in exported.items():
        single[name] = latency(lambda s=scorer: s.score([SHORT_PROMPT], models))
    n_tokens = len(next(iter(exported.values()))._encoder.tokenizer.tokenize([SHORT_PROMPT])[0])
    return {"encoder_prompts_per_s": encoder, "head_scores_per_s_1000x64": head_rates,
            "single_prompt_x64": single | {"tokens": n_tokens}, "torch_threads": torch.get_num_threads()}  # fmt: skip


SERVE = """
import sys, json, time
from pathlib import Path
from router_core.scoring import score_models
prompts = [json.loads(line)["prompt"] for line in open(sys.argv[2], encoding="utf-8")]
if sys.argv[3] == "torch":
    from router_core.pipeline import load_scorer
    from router_core.store import ModelStore
    scorer = load_scorer(ModelStore().resolve(sys.argv[1]))
else:
    from router_runtime import load_exported
    from router_runtime.encoder import OnnxEncoder
    OnnxEncoder.memory_arena = sys.argv[4] == "arena"
    scorer = load_exported(sys.argv[1], backend="onnx")
status = Path("/proc/self/status").read_text()
loaded = int(status.split("VmRSS:")[1].split()[0]) / 1024
start = time.perf_counter()
score_models(scorer, prompts, [f"model-{i}" for i in range(64)])
seconds = time.perf_counter() - start
heavy = [m for m in ("torch", "transformers", "sentence_transformers") if m in sys.modules]
peak = int(Path("/proc/self/status").read_text().split("VmHWM:")[1].split()[0]) / 1024
print(json.dumps({"peak_rss_mb": peak, "rss_after_load_mb": loaded, "score_seconds": seconds, "heavy": heavy}))
"""
"""Loads a model (an exported DIR, or TYPE/NAME with argv[3] == "torch") and scores 500 x 64; its own VmHWM.
argv[4] "arena" keeps ONNX Runtime's CPU memory arena on (the default), anything else turns it off."""


def serving_rss(python: str, ref: str, exports: dict[str, Path], prompts_file: Path, env: dict[str, str]) -> dict:
    """Peak RSS of a process that loads the model and scores 500 x 64: torch path here, exports in `python`."""
    out = {}
    runs = {"torch": (sys.executable, ref, "arena")} | {n: (python, str(p), "arena") for n, p in exports.items()}
    runs |= {f"{n}_no_arena": (python, str(p), "no-arena") for n, p in exports.items()}
    for name, (exe, source, arena) in runs.items():
        done = subprocess.run([exe, "-c", SERVE, source, str(prompts_file), name, arena], env=env,
                              capture_output=True, text=True, check=True)  # fmt: skip
        out[name] = json.loads(done.stdout.strip().splitlines()[-1]) | {"python": exe}
    return out


def main() -> None:
    """Train, export, measure, write the JSON result and print it."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--torch-free-python", default=sys.executable,
                        help="python of an environment with router-runtime[onnx] only (for the serving RSS)")  # fmt: skip
    parser.add_argument("--home", help="keep the trained model and exports here, and reuse them when present")
    parser.add_argument("--only", choices=["serving_process"],
                        help="measure this section again and replace it in the existing results JSON")  # fmt: skip
    args = parser.parse_args()
    home = Path(args.home) if args.home else Path(tempfile.mkdtemp(prefix="bench-runtime-"))
    home.mkdir(parents=True, exist_ok=True)
    env = os.environ | {"ROUTER_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    os.environ.update(env)
    from router_runtime.export import export_model
    from router_runtime.manifest import MANIFEST

    ref = "dense_network/bench" if (home / "models" / "dense_network" / "bench").is_dir() else train(home)
    exports = {"onnx_fp32": home / "export-fp32", "onnx_int8": home / "export-int8"}
    parity = {}
    for name, path in exports.items():
        if not (path / MANIFEST).is_file():
            export_model(ref, path, quantize="int8" if "int8" in name else "none")
        parity[name] = json.loads((path / MANIFEST).read_text())["parity"]
    prompts = kaggle_prompts()
    unseen = prompts[:500]
    prompts_file = home / "prompts.jsonl"
    prompts_file.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in unseen))
    variants = {"torch": ["--model", ref, "--backend", "torch"],
                **{name: ["--model", str(path)] for name, path in exports.items()}}  # fmt: skip
    out = ROOT / "benchmarks" / "results" / "runtime.json"
    results: dict = {"parity": parity, "_about": {
        "cores": len(os.sched_getaffinity(0)), "repeats": args.repeats, "n_unseen_prompts": len(unseen),
        "mean_prompt_chars": float(np.mean([len(p) for p in unseen])), "model": ref, "hidden_dims": [256, 128, 64],
        "torch_free_python": args.torch_free_python, "load_average_at_start": os.getloadavg(), "complete": False}}  # fmt: skip

    def save(section: str, value: dict) -> None:  # after every section, so a cut-short run keeps what it measured
        results[section] = value
        out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"{section}: {json.dumps(value)}", flush=True)

    if args.only:
        results = json.loads(out.read_text())
        save(args.only, serving_rss(args.torch_free_python, ref, exports, prompts_file, env))
        return
    save("serving_process", serving_rss(args.torch_free_python, ref, exports, prompts_file, env))
    save("whole_process_infer", whole_process(variants, prompts_file, env, args.repeats))
    for section, value in in_process(ref, exports, prompts).items():
        save(section, value)
    results["_about"] |= {"complete": True, "load_average_at_end": os.getloadavg()}
    out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
