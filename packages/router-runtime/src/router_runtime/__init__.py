"""router-runtime: the serving side. Scores exported models without torch, and exports saved models.

- `load_exported(directory)` -> `ExportedScorer` (numpy, tokenizers, onnxruntime; the `onnx` extra).
- `router_runtime.export.export_model(source, output, quantize)` writes an exported directory (the `export`
  extra: torch, onnx); its format is described in `router_runtime.export`.
- `router_runtime.backends.select_backend` picks torch, onnx or triton (the fused GPU head).
"""

from router_runtime.backends import select_backend
from router_runtime.exported import ExportedScorer, load_exported

__all__ = ["ExportedScorer", "load_exported", "select_backend"]
