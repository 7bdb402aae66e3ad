"""What the HTTP server accepts: request limits, the request body's schema, and errors that name the field.

Pure pydantic + json, no web framework, so the rules are testable alone and the server only maps `RequestError`
to a response.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError


@dataclass(frozen=True)
class Limits:
    """Per-request limits; a request over any of them is refused with a 4xx naming the field."""

    max_prompts: int = 256
    """Prompts in one request."""
    max_prompt_chars: int = 32_768
    """Characters in one prompt (MiniLM reads the first 256 tokens; the prompt features see the whole text)."""
    max_models: int = 256
    """Candidate models in one request."""
    max_model_chars: int = 256
    """Characters in one model name."""
    max_batch_size: int = 1024
    """Largest `batch_size` a client may ask for."""
    max_body_bytes: int = 8 * 1024 * 1024
    """Bytes in one request body (refused with 413 before it is parsed)."""

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"limit {name} must be a positive integer, got {value!r}")


class RequestError(Exception):
    """A client mistake: HTTP `status`, the offending `field` (dotted path, `body` for the whole) and a message."""

    def __init__(self, status: int, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.status = status
        self.errors = [{"field": field, "message": message}]

    @classmethod
    def from_validation(cls, error: ValidationError) -> RequestError:
        """One 422 listing every pydantic error with its field path."""
        errors = [{"field": _field(item["loc"]), "message": item["msg"]} for item in error.errors(include_url=False)]
        request_error = cls(422, errors[0]["field"], errors[0]["message"])
        request_error.errors = errors
        return request_error

    def payload(self) -> dict[str, Any]:
        """The JSON body of the error response."""
        return {"errors": self.errors}


def _prompt(text: str, info: ValidationInfo) -> str:
    return _check_text(text, _limits(info).max_prompt_chars)


def _model_name(text: str, info: ValidationInfo) -> str:
    if not text.strip():
        raise PydanticCustomError("blank", "a model name cannot be blank")
    return _check_text(text, _limits(info).max_model_chars)


Prompt = Annotated[str, AfterValidator(_prompt)]
ModelName = Annotated[str, AfterValidator(_model_name)]


class ScoreRequest(BaseModel):
    """Body of `POST /score`, `POST /route` and `POST /lengths`."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    prompts: list[Prompt] = Field(min_length=1)
    """Prompts to score (or to predict answer lengths for)."""
    models: list[ModelName] = Field(min_length=1)
    """Candidate model names, each once; unknown ones get the mean score of the known candidates (a length model's
    fallback in /lengths)."""
    batch_size: int = Field(default=128, ge=1)
    """Prompts per encoder batch (a memory knob)."""

    @field_validator("prompts", "models", mode="before")
    @classmethod
    def _check_count(cls, values: Any, info: ValidationInfo) -> Any:
        limits = _limits(info)
        most = limits.max_prompts if info.field_name == "prompts" else limits.max_models
        if isinstance(values, list) and len(values) > most:
            raise PydanticCustomError("too_many", "{n} items; the server takes at most {most}",
                                      {"n": len(values), "most": most})  # fmt: skip
        return values

    @field_validator("models")
    @classmethod
    def _check_unique(cls, models: list[str]) -> list[str]:
        first: dict[str, int] = {}
        for i, model in enumerate(models):
            if model in first:
                raise PydanticCustomError("duplicate", "models[{i}] repeats models[{j}]", {"i": i, "j": first[model]})
            first[model] = i
        return models

    @field_validator("batch_size")
    @classmethod
    def _check_batch_size(cls, batch_size: int, info: ValidationInfo) -> int:
        most = _limits(info).max_batch_size
        if batch_size > most:
            raise PydanticCustomError("too_large", "at most {most}", {"most": most})
        return batch_size


def parse_body(body: bytes) -> Any:
    """The JSON value of a request body; `RequestError(400)` when it is not JSON (or not UTF-8)."""
    try:
        return json.loads(body)
    except RecursionError:
        raise RequestError(400, "body", "JSON nested too deeply") from None
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError, over-long integers
        raise RequestError(400, "body", f"not valid JSON: {error}") from None


def parse_score_request(body: bytes, limits: Limits) -> ScoreRequest:
    """A validated `ScoreRequest` from a raw body; `RequestError` (400 / 422) naming the field otherwise."""
    value = parse_body(body)
    if not isinstance(value, dict):
        raise RequestError(422, "body", f"expected a JSON object, got {_json_type(value)}")
    try:
        return ScoreRequest.model_validate(value, context={"limits": limits})
    except ValidationError as error:
        raise RequestError.from_validation(error) from None


def _limits(info: ValidationInfo) -> Limits:
    context = info.context or {}
    return context.get("limits") or Limits()


def _check_text(text: str, most: int) -> str:
    if len(text) > most:
        raise PydanticCustomError("too_long", "{n} characters; at most {most}", {"n": len(text), "most": most})
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (the JSON escape \ud800): not text, cannot be encoded back
        raise PydanticCustomError("surrogate", "not valid Unicode (a lone surrogate)") from None
    return text


def _field(loc: tuple[int | str, ...]) -> str:
    if not loc:
        return "body"
    out = str(loc[0])
    for part in loc[1:]:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _json_type(value: Any) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)
