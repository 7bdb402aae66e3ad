"""Optimizer specs of the neural scorers, one class per `optimizer_type`, combined in `OptimizerSpec`."""

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, PositiveFloat, PositiveInt

from router_core.specs._base import SpecBase, json_array_as_tuple

Betas = Annotated[
    tuple[Annotated[float, Field(ge=0, lt=1)], Annotated[float, Field(ge=0, lt=1)]], BeforeValidator(json_array_as_tuple)
]


class _OptimizerBase(SpecBase):
    learning_rate: PositiveFloat = 1e-3
    """Step size (for muon: of the orthogonalised updates of weight matrices)."""
    lr_decay_gamma: float | None = Field(default=None, gt=0, le=1)
    """Multiply every learning rate by this factor after each epoch (exponential decay); null = constant."""


class AdamSpec(_OptimizerBase):
    """Adam (`torch.optim.Adam`), L2 weight decay added to the gradient."""

    optimizer_type: Literal["adam"] = "adam"
    betas: Betas = (0.9, 0.999)
    """Decay rates of the first and second moment estimates."""
    eps: PositiveFloat = 1e-8
    """Term added to the denominator for numerical stability."""
    weight_decay: float = Field(default=0.0, ge=0)
    """L2 penalty coefficient."""


class AdamWSpec(_OptimizerBase):
    """AdamW (`torch.optim.AdamW`): Adam with decoupled weight decay."""

    optimizer_type: Literal["adamw"] = "adamw"
    betas: Betas = (0.9, 0.999)
    """Decay rates of the first and second moment estimates."""
    eps: PositiveFloat = 1e-8
    """Term added to the denominator for numerical stability."""
    weight_decay: float = Field(default=0.01, ge=0)
    """Decoupled weight decay coefficient."""


class MuonSpec(_OptimizerBase):
    """Muon for hidden weight matrices (Newton-Schulz orthogonalised momentum), AdamW for everything else.

    Biases, norms, embedding tables and single-output layers go to the AdamW part.
    """

    optimizer_type: Literal["muon"] = "muon"
    learning_rate: PositiveFloat = 0.02
    """Step size of the orthogonalised updates (scaled by sqrt(max(1, rows/cols)) per matrix)."""
    momentum: float = Field(default=0.95, ge=0, lt=1)
    """Momentum of the Muon part."""
    nesterov: bool = True
    """Use Nesterov momentum in the Muon part."""
    ns_steps: PositiveInt = 5
    """Newton-Schulz iterations per step."""
    adamw_lr: PositiveFloat = 3e-4
    """Learning rate of the AdamW part."""
    betas: Betas = (0.9, 0.999)
    """AdamW part: decay rates of the moment estimates."""
    eps: PositiveFloat = 1e-8
    """AdamW part: denominator term."""
    weight_decay: float = Field(default=0.01, ge=0)
    """AdamW part: decoupled weight decay."""
    muon_weight_decay: float = Field(default=0.0, ge=0)
    """Muon part: decoupled weight decay (the reference system used none)."""


OptimizerSpec = Annotated[AdamSpec | AdamWSpec | MuonSpec, Field(discriminator="optimizer_type")]
"""One optimizer, chosen by its `optimizer_type` field."""
