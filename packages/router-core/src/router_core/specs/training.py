"""The training spec: the JSON document `router-cli train` reads (`model`, `data`, `log`, `epochs`, ...)."""

import logging
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from router_core.specs._base import INT_LIMIT, SpecBase

DatasetName = Literal["lmarena_human_preference", "chatbot_arena", "both", "arena_sample"]
DataFormat = Literal["auto", "lmarena_140k", "chatbot_arena", "kaggle_55k", "mt_bench_human", "votes", "canonical"]

log = logging.getLogger(__name__)

MAX_NAME_LENGTH = 128
"""Longest model name: with the store's `.NAME.tmp-XXXXXXXX` siblings and `@epN` checkpoints it fits a file name."""
MAX_SEED = INT_LIMIT
"""Largest seed."""
MAX_EPOCHS = 1_000_000
"""Most epochs a run may ask for."""
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_TYPE_RE = re.compile(r"[a-z][a-z0-9_]*")
_CHECKPOINT_RE = re.compile(r"@ep[0-9]{1,7}\Z")


class WandbSpec(SpecBase):
    """Weights & Biases logging (used by the neural trainers; W&B mode follows WANDB_MODE)."""

    project: str
    """W&B project name."""
    experiment_name: str | None = None
    """Run name shown in W&B."""
    config_name: str | None = None
    """Free-form configuration label, logged with the run config."""
    artifact_name: str | None = None
    """Name of the model artifact uploaded at the end of training."""


class DataSpec(SpecBase):
    """Which battles to train on and how to split them."""

    dataset: DatasetName = "lmarena_human_preference"
    """Named dataset: the two HF datasets, `both`, or `arena_sample` (real battles bundled with router-core)."""
    path: str | list[str] | None = None
    """Local battle file(s) (parquet, JSONL, CSV); overrides `dataset`. Relative paths are read from the cwd."""
    format: DataFormat | None = None
    """Schema of the files in `path`; detected from the columns when absent or `auto`."""
    max_samples: int | None = Field(default=None, ge=1)
    """Keep at most this many battles (seeded sample without replacement, taken before filtering)."""
    validation_split: float = Field(default=0.2, ge=0, lt=1)
    """Fraction of battles held out for validation, grouped by prompt text; 0 trains on everything (a final
    model) and reports no validation figures."""
    selection_split: float = Field(default=0.15, ge=0, lt=1)
    """Fraction of the training battles (after the validation split) held back, grouped by prompt, for what is
    chosen from data: the best epoch, the base model's `alpha`, the calibration link. The model is fitted on the
    rest; validation battles are only measured. 0 chooses on the training battles themselves (optimistic)."""
    seed: int = Field(default=42, ge=0, le=MAX_SEED)
    """Seed of down-sampling, the splits and model initialisation."""

    @model_validator(mode="before")
    @classmethod
    def _accept_seed_typo(cls, data: Any) -> Any:
        # The user's own document spells it `valiation_split`; accept it so those specs keep working.
        if isinstance(data, dict) and "valiation_split" in data:
            if "validation_split" in data:
                raise ValueError("give either validation_split or its misspelling valiation_split, not both")
            log.warning("warning: data.valiation_split is read as data.validation_split")
            data = {("validation_split" if k == "valiation_split" else k): v for k, v in data.items()}
        return data

    @field_validator("path")
    @classmethod
    def _non_empty_paths(cls, value: str | list[str] | None) -> str | list[str] | None:
        paths = [value] if isinstance(value, str) else value or []
        if value is not None and (not paths or any(not p.strip() for p in paths)):
            raise ValueError("path must be a non-empty file path or a non-empty list of them")
        return value

    @model_validator(mode="after")
    def _path_or_dataset(self) -> "DataSpec":
        if self.path is not None and "dataset" in self.model_fields_set:
            raise ValueError("give either data.dataset or data.path, not both")
        if self.format is not None and self.format != "auto" and self.path is None:
            raise ValueError("data.format applies to files given in data.path")
        return self

    @property
    def paths(self) -> list[str]:
        """`path` as a list (empty when a named dataset is used)."""
        return [self.path] if isinstance(self.path, str) else list(self.path or [])


class LogSpec(SpecBase):
    """Console logging."""

    print_every: int = Field(default=1, ge=1, le=MAX_EPOCHS)
    """Print a progress line every N epochs."""


def check_model_name(value: str) -> str:
    """Model names become directory names: letters, digits, '.', '_' and '-', starting with a letter or digit.

    No separators, no `..`, no glob or control characters, at most `MAX_NAME_LENGTH` characters.
    """
    if not _NAME_RE.fullmatch(value) or ".." in value:
        raise ValueError(
            "must start with a letter or digit and use only letters, digits, '.', '_' and '-' (no '..')"
        )
    if len(value) > MAX_NAME_LENGTH:
        raise ValueError(f"is {len(value)} characters long; at most {MAX_NAME_LENGTH} are allowed")
    return value


def check_model_type(value: str) -> str:
    """A model type as it appears in references and store directories: lower-case identifier."""
    if not _TYPE_RE.fullmatch(value) or len(value) > MAX_NAME_LENGTH:
        raise ValueError("must be a model type such as elo_scoring (lower-case letters, digits and '_')")
    return value


def check_model_ref(value: str) -> str:
    """A reference to a saved model: `NAME` or `TYPE/NAME`, NAME optionally ending in a checkpoint's `@epN`.

    The one rule for every reference (`--model`, `start_state`, `load_embedding_model_from`, ...): the NAME
    part obeys `check_model_name`, TYPE is a model-type identifier, so a reference always names a directory
    inside the store and never a path, a glob or anything with a separator or control character.
    """
    model_type, slash, name = value.rpartition("/")
    if slash:
        try:
            check_model_type(model_type)
        except ValueError:
            raise ValueError("must be NAME or TYPE/NAME of a saved model, TYPE a model type such as elo_scoring") from None
    try:
        check_model_name(_CHECKPOINT_RE.sub("", name))
    except ValueError as error:
        raise ValueError(f"must be NAME or TYPE/NAME of a saved model whose NAME {error}") from None
    return value


ModelRef = Annotated[str, AfterValidator(check_model_ref)]
"""A spec field that names a saved model (checked by `check_model_ref`)."""
