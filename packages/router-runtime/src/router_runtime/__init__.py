"""router-runtime: the serving side. Scores exported models without torch, and exports saved models.

- `load_exported(directory)` -> `ExportedScorer` (numpy, tokenizers, onnxruntime; the `onnx` extra).
- `router_runtime.export.export_model(source, output, quantize)` writes an exported directory (the `export`
  extra: torch, onnx); its format is described in `router_runtime.export`.
- `router_runtime.backends.select_backend` picks torch, onnx or triton (the fused GPU head).
- `router-serve` (router_runtime.cli) serves a model over HTTP.

The names above load on first use, so `router_runtime.cli` (imported by `router-cli --help`) costs no numpy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from router_runtime.backends import select_backend
    from router_runtime.exported import ExportedScorer, load_exported

__all__ = ["ExportedScorer", "load_exported", "select_backend"]


def __getattr__(name: str) -> Any:
    if name == "select_backend":
        from router_runtime.backends import select_backend

        return select_backend
    if name in ("ExportedScorer", "load_exported"):
        from router_runtime import exported

        return getattr(exported, name)
    raise AttributeError(f"module 'router_runtime' has no attribute {name!r}")
