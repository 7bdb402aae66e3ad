"""The five fine-tuning methods: which of the encoder's weights train, and how the trained ones are saved.

`full` trains everything, `bitfit` only bias vectors, `last_layers` the top `num_layers` transformer layers,
`lora` peft adapters on some linear layers, `qlora` the same adapters over a 4-bit (bitsandbytes) base. Every
method leaves `requires_grad` set on exactly what it trains, so `trained_state` (those tensors) is what a saved
model stores: never an untouched copy of the base.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import Tensor, nn

from router_core.errors import DataError, UserError
from router_core.specs import (
    BitFitFineTuning,
    FineTuningSpec,
    FullFineTuning,
    LastLayersFineTuning,
    LoraFineTuning,
    QLoraFineTuning,
)

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}

# bitsandbytes (imported by peft) warns at import on CPUs with AVX512-BF16 that the optional `kernels` package is
# absent; its built-in CPU kernels are then used, which is what we want.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)


def quantization_config(spec: FineTuningSpec) -> Any:
    """The transformers `BitsAndBytesConfig` the base is loaded with (QLoRA), else None."""
    if not isinstance(spec, QLoraFineTuning):
        return None
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=_DTYPES[spec.bnb_4bit_compute_dtype],
                              bnb_4bit_quant_type=spec.bnb_4bit_quant_type,
                              bnb_4bit_use_double_quant=spec.bnb_4bit_use_double_quant)  # fmt: skip


def apply_finetuning(model: nn.Module, spec: FineTuningSpec) -> nn.Module:
    """`model` (or its peft wrapper) with `requires_grad` on exactly the parameters `spec` trains."""
    if isinstance(spec, LoraFineTuning):  # QLoRA too: its base was quantised when it was loaded
        return _lora(model, spec)
    for name, param in model.named_parameters():
        param.requires_grad_(isinstance(spec, FullFineTuning) or (isinstance(spec, BitFitFineTuning)
                                                                 and name.rsplit(".", 1)[-1] == "bias"))  # fmt: skip
    if isinstance(spec, LastLayersFineTuning):
        layers = transformer_layers(model)
        if spec.num_layers > len(layers):
            raise UserError(f"finetuning_spec.num_layers = {spec.num_layers}, but the encoder has {len(layers)} layers")
        for layer in list(layers)[-spec.num_layers :]:
            layer.requires_grad_(True)
    return model


def transformer_layers(model: nn.Module) -> nn.ModuleList:
    """The encoder's stack of transformer layers: the longest `nn.ModuleList` of same-typed blocks."""
    stacks = [m for m in model.modules() if isinstance(m, nn.ModuleList) and len(m) and
              len({type(block) for block in m}) == 1]  # fmt: skip
    if not stacks:
        raise UserError(f"last_layers: cannot find the transformer layers of {type(model).__name__}")
    return max(stacks, key=len)


def lora_targets(model: nn.Module, spec: LoraFineTuning) -> list[str]:
    """The module-name suffixes LoRA adapts: `spec.target_modules`, or for "auto" peft's default for the
    architecture; every name must match at least one linear layer."""
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as DEFAULTS

    model_type = getattr(getattr(model, "config", None), "model_type", None)
    linear = sorted({name.rsplit(".", 1)[-1] for name, m in model.named_modules() if _is_linear(m)})
    if spec.target_modules == "auto":
        targets = DEFAULTS.get(model_type or "")
        if targets is None:
            raise UserError(f"finetuning_spec.target_modules \"auto\" has no default for architecture {model_type!r}; "
                            f"list the layers to adapt, from: {', '.join(linear)}")  # fmt: skip
        return list(targets)
    missing = [t for t in spec.target_modules if t not in linear]
    if missing:
        raise UserError(f"finetuning_spec.target_modules {missing} match no linear layer of the encoder; "
                        f"its linear layers are named: {', '.join(linear)}")  # fmt: skip
    return list(spec.target_modules)


def _is_linear(module: nn.Module) -> bool:
    return isinstance(module, nn.Linear) or type(module).__name__ in {"Linear4bit", "Linear8bitLt", "Conv1D"}


def _lora(model: nn.Module, spec: LoraFineTuning) -> nn.Module:
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if isinstance(spec, QLoraFineTuning):
        # Freezes the base, keeps norms in float32 and lets gradients reach the adapters through the frozen input
        # embeddings; gradient checkpointing stays off (it would trade speed for memory on a small encoder).
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    config = LoraConfig(r=spec.rank, lora_alpha=spec.alpha, lora_dropout=spec.dropout,
                        target_modules=lora_targets(model, spec), bias="none")  # fmt: skip
    return get_peft_model(model, config)


def trained_state(model: nn.Module) -> dict[str, Tensor]:
    """The trained tensors (what requires grad), by parameter name, on the CPU."""
    return {name: p.detach().cpu().clone() for name, p in model.named_parameters() if p.requires_grad}


def load_trained_state(model: nn.Module, state: dict[str, Tensor], where: str) -> None:
    """Copy `trained_state`'s tensors into a freshly built `model` of the same base and method."""
    params = {name: p for name, p in model.named_parameters() if p.requires_grad}
    if set(params) != set(state):
        extra, missing = sorted(set(state) - set(params)), sorted(set(params) - set(state))
        raise DataError(f"{where}: the saved encoder weights do not fit this encoder and fine-tuning method "
                        f"(unexpected: {extra[:3]}, missing: {missing[:3]})")  # fmt: skip
    with torch.no_grad():
        for name, param in params.items():
            if param.shape != state[name].shape:
                raise DataError(f"{where}: {name} has shape {tuple(state[name].shape)}, the encoder expects "
                                f"{tuple(param.shape)}")  # fmt: skip
            param.copy_(state[name])

