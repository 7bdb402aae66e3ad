"""Base class of every spec: frozen, unknown keys forbidden, attribute docstrings become schema descriptions."""

from typing import ClassVar

from pydantic import BaseModel, ConfigDict


class SpecBase(BaseModel):
    """Frozen pydantic model that rejects unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class ModelSpecBase(SpecBase):
    """Common shape of a model type's spec (the `model.spec` block)."""

    iterative: ClassVar[bool] = True
    """Whether training runs over `epochs` (False: closed-form scorers, `epochs` is ignored)."""

    prompt_aware: ClassVar[bool] = False
    """Whether the scorer reads prompt text (then battles without a prompt are dropped)."""
