"""Reading raw rows from local battle files (JSONL / JSON / CSV / parquet, optionally gzipped)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from router_core.errors import DataError

BAD_JSON = "__bad_json__"
"""Key of the placeholder row yielded for a line that is not valid JSON (the parser then skips it)."""


def _suffixes(path: Path) -> list[str]:
    return [s.lower() for s in path.suffixes if s.lower() != ".gz"]


def read_rows(path: Path) -> list[dict[str, Any]]:
    """All rows of one file as dicts; columns are read as they are stored (strings for CSV)."""
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    kind = (_suffixes(path) or [""])[-1]
    if kind in (".jsonl", ".json", ".ndjson"):
        return list(_json_rows(path))
    if kind in (".csv", ".tsv"):
        import pandas as pd  # only CSV and parquet need pandas; JSONL stays fast to start

        frame = pd.read_csv(path, dtype=str, keep_default_na=False, sep="\t" if kind == ".tsv" else ",")
        return frame.to_dict("records")
    if kind == ".parquet":
        import pandas as pd

        return pd.read_parquet(path).to_dict("records")
    raise DataError(f"{path}: unsupported file type (expected .jsonl, .json, .csv, .tsv or .parquet)")


def _json_rows(path: Path) -> Iterator[dict[str, Any]]:
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        first = handle.read(1)
        while first.isspace():
            first = handle.read(1)
        if first == "[":  # one JSON array instead of JSON Lines
            yield from json.loads(first + handle.read())
            return
        lines = (first + handle.readline(), *handle)
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                yield {BAD_JSON: f"line {number}: invalid JSON ({error.msg})"}
                continue
            yield row if isinstance(row, dict) else {BAD_JSON: f"line {number}: not a JSON object"}


def columns_of(rows: list[dict[str, Any]]) -> set[str]:
    """Union of the keys of the first 50 well-formed rows."""
    cols: set[str] = set()
    for row in [r for r in rows if BAD_JSON not in r][:50]:
        cols |= set(row)
    return cols
