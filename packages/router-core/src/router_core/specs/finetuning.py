"""Specs of how transformer_embedding fine-tunes its prompt encoder, chosen by `method`.

`lora` and `qlora` train low-rank adapters (peft) on a frozen base (full precision, or 4-bit through
bitsandbytes), `last_layers` the top blocks of the layer stack, `bitfit` the bias vectors only, `full` everything.
"""

from typing import Annotated, Literal

from pydantic import Field, PositiveInt, model_validator

from router_core.specs._base import SpecBase

TargetModules = Literal["auto"] | Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]


class LoraSpec(SpecBase):
    """Low-rank adapters (LoRA) on chosen linear layers of a frozen base; only the adapters are trained and saved."""

    method: Literal["lora"] = "lora"
    rank: PositiveInt = 16
    """Rank r of each adapter (the update is B @ A with A of shape (r, in), B of shape (out, r))."""
    alpha: PositiveInt = 32
    """LoRA alpha: the update is scaled by alpha / rank."""
    dropout: float = Field(default=0.05, ge=0, lt=1)
    """Dropout on the adapters' input."""
    target_modules: TargetModules = "auto"
    """Names of the linear layers that get adapters (matched on the last part of the module name, e.g. ["query",
    "value"]), or "auto": peft's default for the architecture (query and value projections for BERT-like models),
    all linear layers of the layer stack where peft knows none."""


class QLoraSpec(LoraSpec):
    """LoRA on a base whose linear layers are quantised to 4 bits by bitsandbytes (runs on CUDA, and on CPU)."""

    method: Literal["qlora"] = "qlora"  # pyright: ignore[reportIncompatibleVariableOverride]
    load_in_4bit: bool = True
    """Quantise the base's linear layers to 4 bits (must be true: without quantisation use method "lora")."""
    bnb_4bit_compute_dtype: Literal["float16", "bfloat16", "float32"] = "float16"
    """Data type the 4-bit weights are expanded to for each matrix product."""
    bnb_4bit_quant_type: Literal["nf4", "fp4"] = "nf4"
    """4-bit number format: NormalFloat4 (nf4) or plain 4-bit float (fp4)."""

    @model_validator(mode="after")
    def _quantised(self) -> "QLoraSpec":
        if not self.load_in_4bit:
            raise ValueError('load_in_4bit must be true for qlora (a full-precision base is method "lora")')
        return self


class LastLayersSpec(SpecBase):
    """Train the last `num_layers` blocks of the layer stack (and any final normalisation after it); the rest is
    frozen."""

    method: Literal["last_layers"] = "last_layers"
    num_layers: PositiveInt = 2
    """How many blocks, counted from the top, are trained (at most the model's number of layers)."""


class BitFitSpec(SpecBase):
    """BitFit: train only the encoder's bias vectors (of linear and normalisation layers)."""

    method: Literal["bitfit"] = "bitfit"


class FullSpec(SpecBase):
    """Train every weight of the encoder."""

    method: Literal["full"] = "full"


FineTuningSpec = Annotated[LoraSpec | QLoraSpec | LastLayersSpec | BitFitSpec | FullSpec,
                           Field(discriminator="method")]  # fmt: skip
"""How the prompt encoder is fine-tuned, chosen by `method`."""
