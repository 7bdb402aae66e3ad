"""Fine-tuning specs of transformer_embedding's prompt encoder, one class per `method`, combined in
`FineTuningSpec`."""

from typing import Annotated, Literal

from pydantic import Field, PositiveFloat, PositiveInt

from router_core.specs._base import SpecBase


class FullFineTuning(SpecBase):
    """Train every weight of the encoder (its pooler, unused by sentence pooling, is dropped)."""

    method: Literal["full"] = "full"


class LoraFineTuning(SpecBase):
    """Low-rank adapters (peft LoRA) on some linear layers; the base weights stay frozen."""

    method: Literal["lora"] = "lora"
    rank: PositiveInt = 16
    """Rank r of each adapter (A: r x in, B: out x r; B starts at zero)."""
    alpha: PositiveFloat = 32
    """Scaling: the adapter's output is multiplied by alpha / rank."""
    dropout: float = Field(default=0.05, ge=0, lt=1)
    """Dropout on the adapter's input."""
    target_modules: Literal["auto"] | list[Annotated[str, Field(min_length=1)]] = "auto"
    """Names (suffixes) of the linear layers to adapt; "auto" takes peft's default for the architecture (for BERT
    and MiniLM: the attention's query and value projections)."""


class QLoraFineTuning(LoraFineTuning):
    """LoRA over a 4-bit quantised base (bitsandbytes); runs on CUDA and, slowly, on CPU."""

    method: Literal["qlora"] = "qlora"  # type: ignore[assignment]
    load_in_4bit: Literal[True] = True
    """The base's linear layers are stored in 4 bits (8-bit bases are not offered)."""
    bnb_4bit_compute_dtype: Literal["float32", "float16", "bfloat16"] = "float16"
    """Dtype the 4-bit weights are dequantised to for each matrix product."""
    bnb_4bit_quant_type: Literal["nf4", "fp4"] = "nf4"
    """4-bit data type: NormalFloat4 (suits normally distributed weights) or plain FP4."""
    bnb_4bit_use_double_quant: bool = True
    """Quantise the quantisation constants too (saves about 0.4 bits per weight)."""


class BitFitFineTuning(SpecBase):
    """Train only the encoder's bias vectors (BitFit), LayerNorm biases included."""

    method: Literal["bitfit"] = "bitfit"


class LastLayersFineTuning(SpecBase):
    """Freeze the encoder except its last `num_layers` transformer layers."""

    method: Literal["last_layers"] = "last_layers"
    num_layers: PositiveInt = 2
    """Transformer layers trained, counted from the top (at most the encoder's depth)."""


FineTuningSpec = Annotated[
    FullFineTuning | LoraFineTuning | QLoraFineTuning | BitFitFineTuning | LastLayersFineTuning,
    Field(discriminator="method"),
]
"""How the prompt encoder is fine-tuned, chosen by its `method` field."""
