"""Base classes of every spec: frozen, unknown keys forbidden, attribute docstrings become schema descriptions."""

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field


class SpecBase(BaseModel):
    """Frozen pydantic model that rejects unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


def min_occurrences_field(default: int) -> Any:
    """The rare-model threshold field with a per-model-type default; `min_model_comparisons` (the seed's
    spelling for the neural types) is accepted for it in JSON."""
    return Field(default=default, ge=1, le=10**9,
                 validation_alias=AliasChoices("min_model_occurrences", "min_model_comparisons"))  # fmt: skip


class ModelSpecBase(SpecBase):
    """Common shape of a model type's spec (the `model.spec` block)."""

    if TYPE_CHECKING:
        # Every model type declares `model_type: Literal["<its tag>"]`; declared here (for the type checker only,
        # as Any: a str field could not be narrowed to a Literal by a subclass) so code holding any spec reads it.
        model_type: Any

    iterative: ClassVar[bool] = True
    """Whether training runs over `epochs` (False: closed-form scorers, `epochs` is ignored)."""

    prompt_aware: ClassVar[bool] = False
    """Whether the scorer reads prompt text (then battles without a prompt are dropped)."""

    reference_fields: ClassVar[tuple[str, ...]] = ()
    """Fields naming a saved model (TYPE/NAME); the pipeline resolves them into `RunConfig.references`."""

    min_model_occurrences: int = min_occurrences_field(1)
    """Battles whose models appear fewer times than this (either side, any outcome) are dropped before training
    (`min_model_comparisons` is accepted as another name for it)."""

    def references(self) -> dict[str, str]:
        """The saved-model references this spec makes: field name -> TYPE/NAME."""
        return {name: value for name in self.reference_fields if (value := getattr(self, name)) is not None}


class ClosedFormSpecBase(ModelSpecBase):
    """A prompt-agnostic scorer fitted in closed form (no epochs), with a fit summary."""

    iterative: ClassVar[bool] = False

    print_summary: bool = True
    """Log the fit summary after fitting."""
