"""The fine-tuning methods of transformer_embedding: which of the base's weights train, and how the base is loaded.

`lora` / `qlora` wrap the base in peft adapters (qlora on a bitsandbytes 4-bit base), `last_layers` unfreezes the
top blocks of the layer stack, `bitfit` the bias vectors, `full` everything. Whatever is not trained is frozen
(`requires_grad=False`), so the optimizer, the best-epoch copy and the saved state hold only the trained tensors.
`merged_backbone` gives the plain float transformer a trained one computes (adapters merged), for export.
"""

from __future__ import annotations

import copy
import logging
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from router_core.errors import UserError
from router_core.specs import BitFitSpec, FineTuningSpec, FullSpec, LastLayersSpec, LoraSpec, QLoraSpec
from router_neural.transformer_embedding.encoder import load_backbone

log = logging.getLogger(__name__)

COMPUTE_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


def layer_stack(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """The transformer's block list (the longest `nn.ModuleList`, e.g. `encoder.layer` of BERT) and its name."""
    stacks = [(name, module) for name, module in model.named_modules() if isinstance(module, nn.ModuleList)]
    if not stacks:
        raise UserError(f"{type(model).__name__} has no list of transformer blocks; last_layers cannot find them")
    return max(stacks, key=lambda item: len(item[1]))


def auto_target_modules(model: nn.Module) -> list[str]:
    """peft's LoRA targets for the architecture (query and value for BERT-like models); where peft knows none,
    every linear layer inside the blocks (by its last name part)."""
    from peft.utils import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as KNOWN

    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type in KNOWN:
        return list(KNOWN[model_type])
    prefix, _ = layer_stack(model)
    names = {name.rsplit(".", 1)[-1] for name, module in model.named_modules()
             if name.startswith(prefix + ".") and isinstance(module, nn.Linear)}  # fmt: skip
    log.info("no LoRA defaults for model type %s; adapting every linear layer of the blocks: %s", model_type, names)
    return sorted(names)


def compute_dtype(spec: QLoraSpec, device: torch.device, note: Callable[[str], None]) -> torch.dtype:
    """The 4-bit layers' compute dtype: the spec's, except that on CPU half precision (which CPUs emulate, about
    20x slower on the 4-bit path) is replaced by float32; the weights stay 4-bit either way."""
    wanted = COMPUTE_DTYPES[spec.bnb_4bit_compute_dtype]
    if device.type == "cpu" and wanted != torch.float32:
        note(f"qlora on CPU: computing in float32 instead of {spec.bnb_4bit_compute_dtype} "
             "(half-precision 4-bit products are emulated on CPU); the base weights stay 4-bit")  # fmt: skip
        return torch.float32
    return wanted


def finetunable_backbone(directory: Path, spec: FineTuningSpec, device: torch.device,
                         note: Callable[[str], None] = log.info) -> nn.Module:  # fmt: skip
    """The base loaded from `directory` with exactly the parameters `spec` trains left trainable."""
    if isinstance(spec, QLoraSpec):
        from transformers import BitsAndBytesConfig

        quantization = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=spec.bnb_4bit_quant_type,
                                          bnb_4bit_compute_dtype=compute_dtype(spec, device, note))  # fmt: skip
        where = {"": device.index or 0} if device.type == "cuda" else {"": "cpu"}
        model = load_backbone(directory, quantization_config=quantization, device_map=where)
    else:
        model = load_backbone(directory)
    return apply_method(model, spec)


def apply_method(model: nn.Module, spec: FineTuningSpec) -> nn.Module:
    """Freeze what `spec` does not train (LoRA methods return the peft-wrapped model)."""
    if isinstance(spec, LoraSpec):  # also QLoraSpec
        from peft import LoraConfig, get_peft_model

        targets = auto_target_modules(model) if spec.target_modules == "auto" else list(spec.target_modules)
        config = LoraConfig(r=spec.rank, lora_alpha=spec.alpha, lora_dropout=spec.dropout, target_modules=targets,
                            bias="none")  # fmt: skip
        try:
            with warnings.catch_warnings():  # peft reads a transformers property deprecated in transformers 5
                warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
                return get_peft_model(model, config)  # freezes the base, adds trainable adapters
        except ValueError as error:
            raise UserError(f"finetuning_spec.target_modules {targets}: {error}") from None
    model.requires_grad_(isinstance(spec, FullSpec))
    if isinstance(spec, BitFitSpec):
        for name, param in model.named_parameters():
            param.requires_grad_(name.rsplit(".", 1)[-1] == "bias")
    elif isinstance(spec, LastLayersSpec):
        _unfreeze_top(model, spec.num_layers)
    return model


def _unfreeze_top(model: nn.Module, num_layers: int) -> None:
    """Train the last `num_layers` blocks and whatever is registered after the stack (a final norm, if any)."""
    prefix, stack = layer_stack(model)
    if num_layers > len(stack):
        raise UserError(f"finetuning_spec.num_layers is {num_layers} but the model has {len(stack)} layers")
    first = len(stack) - num_layers
    after_stack = False
    for name, param in model.named_parameters():
        in_stack = name.startswith(prefix + ".")
        if in_stack:
            after_stack = True
            param.requires_grad_(int(name[len(prefix) + 1 :].split(".", 1)[0]) >= first)
        else:
            param.requires_grad_(after_stack)  # parameters registered after the blocks (final norms)


def trainable_count(module: nn.Module) -> int:
    """Number of trainable scalars of `module`."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def merged_backbone(backbone: nn.Module, directory: Path, spec: FineTuningSpec) -> nn.Module:
    """A plain float32 transformer on the CPU, in eval mode, computing what the trained `backbone` (loaded from
    `directory` and fine-tuned by `spec`) computes, with nothing of peft or bitsandbytes left in it.

    lora: the adapters merged into a copy (peft `merge_and_unload`); qlora: the 4-bit base dequantised to float32
    into a float copy of the base (the float weights of `directory` are not those the model was trained on), then
    merged; bitfit, last_layers and full: a copy, their trained weights are in the backbone already. `backbone`
    itself is not changed.
    """
    if isinstance(spec, QLoraSpec):
        model = apply_method(load_backbone(directory), spec)
        model.load_state_dict(_dequantized_state(backbone, list(model.state_dict())))
    else:
        model = copy.deepcopy(backbone)
    if isinstance(spec, LoraSpec):  # also QLoraSpec
        from peft import PeftModel

        if not isinstance(model, PeftModel):
            raise UserError(f"a {spec.method} backbone should be a peft model, not a {type(model).__name__}")
        model = model.merge_and_unload()
    return model.float().cpu().eval()


def _dequantized_state(model: nn.Module, names: list[str]) -> dict[str, torch.Tensor]:
    """The tensors `names` of `model` in float32 on the CPU, its bitsandbytes 4-bit weights dequantised."""
    from bitsandbytes.functional import dequantize_4bit
    from bitsandbytes.nn.modules import Params4bit

    tensors = dict(model.named_parameters()) | dict(model.named_buffers())
    state = {}
    for name in names:
        tensor = tensors[name]
        if isinstance(tensor, Params4bit):
            tensor = dequantize_4bit(tensor.data, tensor.quant_state)
        state[name] = tensor.detach().float().cpu()
    return state
