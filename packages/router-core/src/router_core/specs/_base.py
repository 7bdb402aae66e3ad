"""Base class of every spec: frozen, strict, unknown keys forbidden, attribute docstrings become descriptions.

Rules that hold for every field of every spec live here, once:
- `strict`: no coercion, so `true` is not an integer, `"3"` is not a number and `1e30` is not an epoch count;
- `allow_inf_nan=False`: `Infinity` and `NaN` (which Python's JSON reader accepts) are refused;
- every integer, also inside lists, lies within `INT_LIMIT`, so no value overflows a C integer downstream.
"""

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

INT_LIMIT = 2**31 - 1
"""Largest magnitude of any integer in a spec (fits int32; per-field bounds may be tighter)."""


def _check_ints(value: Any) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > INT_LIMIT:
        raise ValueError(f"must be between {-INT_LIMIT} and {INT_LIMIT}")
    if isinstance(value, list | tuple):
        for item in value:
            _check_ints(item)
    elif isinstance(value, dict):
        for item in value.values():
            _check_ints(item)


def json_array_as_tuple(value: Any) -> Any:
    """For tuple fields: strict mode wants a tuple, JSON has arrays (`BeforeValidator(json_array_as_tuple)`)."""
    return tuple(value) if isinstance(value, list) else value


class SpecBase(BaseModel):
    """Frozen, strict pydantic model that rejects unknown keys and non-finite or oversized numbers."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, use_attribute_docstrings=True, strict=True, allow_inf_nan=False
    )

    @field_validator("*", mode="after")
    @classmethod
    def _bounded_integers(cls, value: Any) -> Any:
        _check_ints(value)
        return value


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
        """The saved-model references this spec makes: field name -> TYPE/NAME (unset and inline values are not)."""
        return {name: value for name in self.reference_fields if isinstance(value := getattr(self, name), str)}


class ClosedFormSpecBase(ModelSpecBase):
    """A prompt-agnostic scorer fitted in closed form (no epochs), with a fit summary."""

    iterative: ClassVar[bool] = False

    print_summary: bool = True
    """Log the fit summary after fitting."""
