"""Readable validation errors (JSON paths, no union tags) and the schema text."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from pydantic import ValidationError


def schema_text() -> str:
    """The JSON Schema of `TrainingSpec`, as written to training_specs/schema.json."""
    from router_core.specs import TrainingSpec

    return json.dumps(TrainingSpec.model_json_schema(by_alias=True), indent=2) + "\n"


@cache
def _union_tags() -> frozenset[str]:
    tags: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            tags.update((node.get("discriminator") or {}).get("mapping", {}))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(schema_text()))
    return frozenset(tags)


def format_validation_error(error: ValidationError) -> str:
    """One line per problem: `  model.spec.k_factor: Input should be greater than 0 (got -1)`."""
    lines = []
    for item in error.errors(include_url=False):
        path = ".".join(str(p) for p in item["loc"] if p not in _union_tags()) or "(top level)"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        elif item["type"] not in ("missing", "value_error") and "input" in item:
            message += f" (got {json.dumps(item['input'], default=str)[:60]})"
        lines.append(f"  {path}: {message}")
    return "\n".join(lines)
