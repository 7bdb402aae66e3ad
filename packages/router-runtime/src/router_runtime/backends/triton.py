"""The scoring head as one fused Triton kernel over all n prompts x k models, and the scorers that use it.

The per-prompt side of the first layer (W_u u + b_1, S_u u) is one small matrix product per prompt; the kernel
then does everything per (prompt, model) pair in one launch: add the precomputed model side, LayerNorm,
LeakyReLU, shortcut, every later layer, the output layer, the model bias and base + alpha. Hidden widths are
zero-padded to one power of two H; each layer's matrix product runs in column tiles of BN, its pre-activations
go through a scratch buffer so the next layer sees whole rows. The numpy reference is `router_runtime.head`;
`TRITON_INTERPRET=1` runs this kernel on CPU for the parity test. Needs the `triton` extra.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from router_core.errors import UserError
from router_runtime.backends import TWO_TOWER_ON_TRITON
from router_runtime.head import LEAKY_SLOPE, Head

try:
    import torch
    import triton

    from router_runtime.backends.triton_kernels import head_kernel
except ImportError as error:  # pragma: no cover - depends on the install
    raise UserError("the triton backend needs torch and triton: install router-runtime[triton]") from error

BLOCK = 32
"""(prompt, model) pairs per program."""


def _pad(array: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    out = np.zeros(shape, dtype=np.float32)
    if array is not None:
        out[tuple(slice(0, s) for s in array.shape)] = array
    return out


class TritonHead:
    """A `HeadRunner` that scores with `head_kernel` on `device` ("cuda"; "cpu" only under TRITON_INTERPRET=1);
    a two-tower head is refused (UserError)."""

    def __init__(self, head: Head, device: str = "cuda", max_scratch_bytes: int = 256 << 20) -> None:
        if head.two_tower:
            raise UserError(TWO_TOWER_ON_TRITON)
        layers = head.layers
        has_ln = {layer.norm_weight is not None for layer in layers}
        has_sc = {layer.shortcut is not None for layer in layers}
        if len(has_ln) > 1 or len(has_sc) > 1:
            raise UserError("the Triton head needs every layer to have (or lack) LayerNorm and shortcut alike")
        self.head, self.device = head, torch.device(device)
        self.has_ln, self.has_sc = has_ln.pop(), has_sc.pop()
        self.H = H = max(16, triton.next_power_of_2(max(layer.width for layer in layers)))
        self.BN = min(H, 64)
        self.max_scratch_bytes = max_scratch_bytes
        later = layers[1:]
        tensor = self._tensor
        self.w = tensor(np.stack([_pad(layer.weight.T, (H, H)) for layer in later]) if later else np.zeros((1, H, H)))
        self.s = tensor(np.stack([_pad(layer.shortcut.T if layer.shortcut is not None else None, (H, H))
                                  for layer in later]) if later and self.has_sc else np.zeros((1, 1, 1)))  # fmt: skip
        self.b, self.g, self.be = (tensor(np.stack([_pad(getattr(layer, name), (H,)) for layer in later])
                                          if later else np.zeros((1, H))) for name in ("bias", "norm_weight", "norm_bias"))  # fmt: skip
        self.g0, self.be0 = tensor(_pad(layers[0].norm_weight, (H,))), tensor(_pad(layers[0].norm_bias, (H,)))
        self.widths = torch.tensor([layer.width for layer in layers], dtype=torch.int32, device=self.device)
        self.model_side = tensor(_pad(head.model_side, (len(head.models), H)))
        self.model_shortcut = tensor(_pad(head.model_shortcut, (len(head.models), H)))
        self.out_weight = tensor(_pad(head.out_weight, (H,)))
        self.model_bias, self.base = tensor(head.model_bias), tensor(head.base)
        self.projections = [(p.start, p.stop, tensor(p.weight), tensor(p.bias)) for p in head.projections]
        first = layers[0]
        self.w_u, self.b_1 = tensor(_pad(first.weight, (H, first.weight.shape[1]))), tensor(_pad(first.bias, (H,)))
        self.s_u = tensor(_pad(first.shortcut, (H, first.weight.shape[1]))) if first.shortcut is not None else None

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(array, dtype=np.float32), device=self.device)

    def prompt_side(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """W_u u + b_1 and S_u u, each (n, H), for prompt inputs x (n, input_dim) on the device."""
        u = x
        if self.projections:
            u = torch.cat([torch.nn.functional.leaky_relu(x[:, a:b] @ w.T + bias, LEAKY_SLOPE)
                           for a, b, w, bias in self.projections], dim=1)  # fmt: skip
        side = u @ self.w_u.T + self.b_1
        return side.contiguous(), (u @ self.s_u.T).contiguous() if self.s_u is not None else side

    def __call__(self, x: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Scores (n, len(rows)) float32 of prompt inputs x (n, input_dim) against the head's models at `rows`."""
        index = torch.as_tensor(rows, device=self.device)
        k, out = len(rows), torch.empty((len(x), len(rows)), dtype=torch.float32, device=self.device)
        chunk = max(1, self.max_scratch_bytes // (2 * 4 * self.H * max(k, 1)))
        model_side = self.model_side[index].contiguous()
        model_shortcut = self.model_shortcut[index].contiguous()
        bias, base = self.model_bias[index].contiguous(), self.base[index].contiguous()
        with torch.no_grad():
            for start in range(0, len(x), chunk):
                xs = self._tensor(x[start : start + chunk])
                side, shortcut = self.prompt_side(xs)
                self._launch(side, shortcut, model_side, model_shortcut, bias, base, out[start : start + len(xs)])
        return out.cpu().numpy()

    def _launch(self, side: torch.Tensor, shortcut: torch.Tensor, model_side: torch.Tensor,
                model_shortcut: torch.Tensor, bias: torch.Tensor, base: torch.Tensor, out: torch.Tensor) -> None:  # fmt: skip
        n, k = out.shape
        pre = torch.empty((n * k, self.H), dtype=torch.float32, device=self.device)
        sc = torch.empty_like(pre) if self.has_sc else pre
        grid = (triton.cdiv(n * k, BLOCK),)
        # Triton's tl.constexpr parameters take plain Python values at launch; passed by name, as Triton reads them.
        constants: dict[str, Any] = {"H": self.H, "BN": self.BN, "N_LATER": len(self.head.layers) - 1,
                                     "HAS_LN": self.has_ln, "HAS_SC": self.has_sc, "BLOCK": BLOCK, "SLOPE": LEAKY_SLOPE}
        head_kernel[grid](side, shortcut, model_side, model_shortcut, self.g0, self.be0, self.w, self.b, self.g,
                          self.be, self.s, self.widths, self.out_weight, bias, base, pre, sc, out, n, k,
                          float(self.head.out_bias), float(self.head.alpha), **constants)  # fmt: skip


class TritonScorer:
    """A saved prompt-aware model scored with its own (torch) encoder and the fused Triton head."""

    def __init__(self, scorer: Any, device: str = "cuda") -> None:
        from router_runtime.backends.torch import head_of

        self.scorer = scorer
        self.head = TritonHead(head_of(scorer), device)
        self._index = {m: i for i, m in enumerate(scorer.known_models)}

    @classmethod
    def from_saved(cls, saved: Any) -> TritonScorer:
        """The saved model (a `SavedModel` from the store) with the Triton head."""
        from router_core.pipeline import load_scorer

        scorer = load_scorer(saved)
        if not scorer.spec.prompt_aware:
            raise UserError(f"{saved.ref} is prompt-agnostic: it has no scoring head for the triton backend")
        return cls(scorer)

    @property
    def known_models(self) -> tuple[str, ...]:
        """Models seen in training."""
        return tuple(self._index)

    def score(self, prompts: Sequence[str], models: Sequence[str], batch_size: int = 128) -> np.ndarray:
        """Scores (n_prompts, n_models), float64; NaN for models never seen in training."""
        out = np.full((len(prompts), len(models)), np.nan)
        columns = [j for j, m in enumerate(models) if m in self._index]
        if prompts and columns:
            x, _ = self.scorer.prompt_inputs(list(prompts))
            out[:, columns] = self.head(np.asarray(x, dtype=np.float32), np.array([self._index[models[j]] for j in columns]))
        return out
