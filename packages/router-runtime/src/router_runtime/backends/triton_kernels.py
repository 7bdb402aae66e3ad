"""The Triton kernels of the fused scoring head (used by `router_runtime.backends.triton`, which documents them).

Written in Triton's kernel language: `triton.jit` specialises each parameter on the value passed at launch, so the
parameters carry no annotations (any other than `tl.constexpr` would change what Triton compiles) and `tl`'s
compile-time constructs (`tl.static_range`) have no static types.
"""
# pyright: reportMissingParameterType=false, reportUnknownParameterType=false, reportGeneralTypeIssues=false

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _layer_norm_act(y, g, b, width, offs_h, HAS_LN: tl.constexpr, SLOPE: tl.constexpr):
    """LeakyReLU(LayerNorm(y)) over the first `width` of H columns; y (BLOCK, H), g and b (H,)."""
    if HAS_LN:
        valid = (offs_h < width)[None, :]
        mean = tl.sum(tl.where(valid, y, 0.0), axis=1) / width
        centred = tl.where(valid, y - mean[:, None], 0.0)
        rstd = 1.0 / tl.sqrt(tl.sum(centred * centred, axis=1) / width + 1e-5)
        y = centred * rstd[:, None] * g[None, :] + b[None, :]
    return tl.where(y > 0, y, y * SLOPE)


@triton.jit
def head_kernel(
    a_ptr, sa_ptr,  # (n, H): prompt side of layer 0 (W_u u + b_1) and of its shortcut (S_u u)
    m_ptr, sm_ptr,  # (k, H): model side of layer 0 and of its shortcut
    g0_ptr, be0_ptr,  # (H,): layer 0 LayerNorm weight and bias
    w_ptr, b_ptr, g_ptr, be_ptr, s_ptr,  # layers 1..L-1: W and S (L-1, H, H) as (in, out); b, g, be (L-1, H)
    widths_ptr,  # (L,) int32: true width of each layer (for LayerNorm)
    ow_ptr, mb_ptr, base_ptr,  # (H,) output weights; (k,) model bias; (k,) base score
    pre_ptr, sc_ptr,  # (n * k, H) scratch: pre-activations and shortcut of the layer being computed
    out_ptr,  # (n, k) float32 scores
    n, k, out_bias, alpha,
    H: tl.constexpr, BN: tl.constexpr, N_LATER: tl.constexpr, HAS_LN: tl.constexpr, HAS_SC: tl.constexpr,
    BLOCK: tl.constexpr, SLOPE: tl.constexpr,
):  # fmt: skip
    pair = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    live = pair < n * k
    p = tl.where(live, pair // k, 0)
    m = tl.where(live, pair % k, 0)
    offs_h = tl.arange(0, H)
    z = tl.load(a_ptr + p[:, None] * H + offs_h[None, :]) + tl.load(m_ptr + m[:, None] * H + offs_h[None, :])
    z = _layer_norm_act(z, tl.load(g0_ptr + offs_h), tl.load(be0_ptr + offs_h), tl.load(widths_ptr), offs_h, HAS_LN,
                        SLOPE)  # fmt: skip
    if HAS_SC:
        z += tl.load(sa_ptr + p[:, None] * H + offs_h[None, :]) + tl.load(sm_ptr + m[:, None] * H + offs_h[None, :])
    rows = tl.where(live, pair, 0)[:, None] * H
    for layer in tl.static_range(N_LATER):
        for tile in tl.static_range(H // BN):
            cols = tile * BN + tl.arange(0, BN)
            w = tl.load(w_ptr + layer * H * H + offs_h[:, None] * H + cols[None, :])
            y = tl.dot(z, w, input_precision="ieee") + tl.load(b_ptr + layer * H + cols)[None, :]
            tl.store(pre_ptr + rows + cols[None, :], y, mask=live[:, None])
            if HAS_SC:
                s = tl.load(s_ptr + layer * H * H + offs_h[:, None] * H + cols[None, :])
                tl.store(sc_ptr + rows + cols[None, :], tl.dot(z, s, input_precision="ieee"), mask=live[:, None])
        tl.debug_barrier()  # the tiles of a row were written by other threads of this program
        y = tl.load(pre_ptr + rows + offs_h[None, :], mask=live[:, None], other=0.0)
        z = _layer_norm_act(y, tl.load(g_ptr + layer * H + offs_h), tl.load(be_ptr + layer * H + offs_h),
                            tl.load(widths_ptr + layer + 1), offs_h, HAS_LN, SLOPE)  # fmt: skip
        if HAS_SC:
            z += tl.load(sc_ptr + rows + offs_h[None, :], mask=live[:, None], other=0.0)
        tl.debug_barrier()  # the next layer overwrites the scratch rows
    score = tl.sum(z * tl.load(ow_ptr + offs_h)[None, :], axis=1) + out_bias + tl.load(mb_ptr + m)
    tl.store(out_ptr + p * k + m, tl.load(base_ptr + m) + alpha * score, mask=live)
