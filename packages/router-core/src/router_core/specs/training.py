"""The training spec: the JSON document `router-cli train` reads (`model`, `data`, `log`, `epochs`, ...)."""

import logging
import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from router_core.specs._base import SpecBase

DatasetName = Literal["lmarena_human_preference", "chatbot_arena", "both", "arena_sample"]
DataFormat = Literal["auto", "lmarena_140k", "chatbot_arena", "kaggle_55k", "mt_bench_human", "votes", "canonical"]

log = logging.getLogger(__name__)
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


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
    seed: int = 42
    """Seed of down-sampling, the split and model initialisation."""

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

    print_every: int = Field(default=1, ge=1)
    """Print a progress line every N epochs."""


def check_model_name(value: str) -> str:
    """Model names become directory names: letters, digits, '.', '_' and '-' only."""
    if not _NAME_RE.match(value):
        raise ValueError("must start with a letter or digit and use only letters, digits, '.', '_' and '-'")
    return value
