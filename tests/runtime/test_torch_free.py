"""An exported directory scores without torch, transformers or sentence-transformers, through the API and the CLI."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, sys
import numpy as np
from router_runtime import load_exported
from router_core.scoring import score_models
from router_cli import main
scorer = load_exported(sys.argv[1], backend="onnx", threads=1)
scores = score_models(scorer, ["Write a haiku about autumn", ""], [*scorer.known_models, "unseen"])
code = main(["infer", "--model", sys.argv[1], "--models-to-score", *scorer.known_models, "--prompts", "hello",
             "--output-path", sys.argv[2], "--backend", "onnx", "--threads", "1"])
heavy = [m for m in ("torch", "transformers", "sentence_transformers") if m in sys.modules]
print(json.dumps({"heavy": heavy, "shape": list(scores.shape), "code": code, "finite": bool(np.isfinite(scores).all())}))
"""


def test_exported_model_scores_without_torch(exported, tmp_path):
    directory = exported("dense_network")
    out = tmp_path / "scores.json"
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(directory), str(out)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"heavy": [], "shape": [2, 6], "code": 0, "finite": True}
    written = json.loads(out.read_text())
    assert list(written) == json.loads((directory / "head.json").read_text())["models"]
    assert all(len(v) == 1 for v in written.values())
